// The Proxmox backend against the simulator: lifecycle, ownership, concurrent allocation, template errors.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxBackend, VmidConflictError } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import { ownerDescription, parseOwner, vmName } from '../backends/proxmox/marks';
import { PermanentBackendError } from '../backends/contract';
import type { Owner } from '../common/contract';
import { PveSim, type StartEvent } from '../simulators/proxmox/server';
import { guestBoot } from './support/guest-boot';
import { pveTestProfile } from './support/pve-stack';

let sim: PveSim;
let snippetsDir: string;
const clients: ProxmoxClient[] = [];
const started: StartEvent[] = [];

const profile = pveTestProfile({ cores: 4, memoryMb: 6144 });
const owner = (n: number | string): Owner => ({ jobId: `job-${n}`, workflowId: `job-${n}` });

function backend(range = { min: 7000, max: 7099 }, temporal?: { uiUrl: string; namespace: string }): ProxmoxBackend {
  const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  clients.push(client);
  return new ProxmoxBackend({ client, node: 'pve', vmidRange: range, snippetsDir, pollIntervalMs: 10, temporal });
}

beforeEach(async () => {
  snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-snippets-'));
  started.length = 0;
  sim = new PveSim({ snippetsDir, authFailureDelayMs: 10, onStart: (e) => started.push(e) });
  await sim.listen();
  sim.addTemplate(9000);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await sim.close();
  rmSync(snippetsDir, { recursive: true, force: true });
});

test('full lifecycle leaves no VM and no snippet behind', async () => {
  const b = backend();
  const vmid = await b.allocate(owner(1), 1);
  expect(await b.allocate(owner(1), 1)).toBe(vmid); // idempotent per owner and attempt
  await b.clone({ vmid, owner: owner(1) }, profile);
  await b.clone({ vmid, owner: owner(1) }, profile); // a retried clone adopts its own VM
  expect(await b.allocate(owner(1), 1)).toBe(vmid);
  const vm = sim.vm(vmid)!;
  expect(String(vm.config.tags).split(';')).toContain('agentlab');
  expect(String(vm.config.description)).toContain('"workflowId":"job-1"');

  const boot = guestBoot(vmid, { jobId: 'job-1', controllerUrl: 'http://10.77.0.1:8844' });
  await b.configure({ vmid, owner: owner(1) }, profile, boot);
  expect(vm.config).toMatchObject({
    cores: '4',
    memory: '6144',
    net0: expect.stringMatching(/^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr1$/), // Proxmox adds a MAC on write
    cicustom: `user=local:snippets/agentlab-${vmid}.yaml`,
    ciupgrade: '0',
  });
  const snippet = join(snippetsDir, `agentlab-${vmid}.yaml`);
  expect(readFileSync(snippet, 'utf8')).toMatch(/^#cloud-config\n/);

  await b.start({ vmid, owner: owner(1) });
  const bootstrap = started[0]?.bootstrap as { token: string; vmid: number; jobId: string; controllerUrl: string };
  expect(bootstrap).toMatchObject({ vmid, jobId: 'job-1', controllerUrl: 'http://10.77.0.1:8844' });
  expect(bootstrap.token).toBe(boot.bootstrap.token); // what the configure activity minted, and nothing else

  let address: string | undefined;
  for (let i = 0; i < 50 && !address; i++) address = await b.guestAddress({ vmid, owner: owner(1) });
  expect(address).toMatch(/^10\.77\.\d+\.\d+$/);
  expect(await b.listOwned()).toEqual([{ vmid, jobId: 'job-1', workflowId: 'job-1', running: true }]);

  await b.deleteBootstrap({ vmid, owner: owner(1) });
  expect(existsSync(snippet)).toBe(false);
  expect(await b.destroy({ vmid, owner: owner(2) })).toBe('not-ours');
  expect(await b.destroy({ vmid, owner: owner(1) })).toBe('destroyed'); // stops the running VM first
  expect(await b.destroy({ vmid, owner: owner(1) })).toBe('absent');
  expect([...sim.state.vms.keys()]).toEqual([9000]);
});

test('a foreign VM on a colliding VMID is never stopped, configured or destroyed', async () => {
  sim.addVm(7000, {}, true);
  sim.addVm(7001, { tags: 'agentlab' }, true); // even with our tag but no owner mark
  const b = backend({ min: 7000, max: 7002 });
  expect(await b.allocate(owner(1), 1)).toBe(7002);
  for (const vmid of [7000, 7001]) {
    await expect(b.stop({ vmid, owner: owner(1) })).rejects.toBeInstanceOf(PermanentBackendError);
    await expect(b.start({ vmid, owner: owner(1) })).rejects.toBeInstanceOf(PermanentBackendError);
    await expect(
      b.configure({ vmid, owner: owner(1) }, profile, guestBoot(vmid, { jobId: 'x', controllerUrl: 'http://x' })),
    ).rejects.toThrow(/not an agentlab/);
    expect(await b.destroy({ vmid, owner: owner(1) })).toBe('not-ours');
    await expect(b.clone({ vmid, owner: owner(1) }, profile)).rejects.toBeInstanceOf(VmidConflictError);
    expect(sim.vm(vmid)?.status).toBe('running');
  }
  expect(await b.listOwned()).toEqual([]);
});

test('20 owners allocating in parallel through 4 workers never share a VMID', async () => {
  const workers = [backend({ min: 7000, max: 7024 }), backend({ min: 7000, max: 7024 })];
  workers.push(backend({ min: 7000, max: 7024 }), backend({ min: 7000, max: 7024 }));
  let conflicts = 0;
  const results = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const b = workers[i % workers.length]!;
      // What the workflow does: a clone that lost the VMID race fails, and the next attempt allocates again.
      for (let attempt = 1; attempt <= 20; attempt++) {
        const vmid = await b.allocate(owner(i), attempt);
        try {
          await b.clone({ vmid, owner: owner(i) }, profile);
          return vmid;
        } catch (err) {
          if (!(err instanceof VmidConflictError)) throw err;
          conflicts++;
        }
      }
      throw new Error(`owner ${i} never got a VMID`);
    }),
  );
  expect(new Set(results).size).toBe(20);
  for (const [i, vmid] of results.entries()) {
    expect(String(sim.vm(vmid)?.config.description)).toContain(`"workflowId":"job-${i}"`);
  }
  expect(conflicts).toBeGreaterThanOrEqual(0);
});

test('template problems are permanent errors carrying the reason', async () => {
  const b = backend();
  const vmid = await b.allocate(owner(1), 1);
  const missing = b.clone({ vmid, owner: owner(1) }, { ...profile, templateVmid: 9999 });
  await expect(missing).rejects.toBeInstanceOf(PermanentBackendError);
  await expect(missing).rejects.toThrow("Configuration file 'nodes/pve/qemu-server/9999.conf' does not exist");
  sim.addTemplate(9001, { agent: false, cloudInit: false });
  await expect(b.clone({ vmid, owner: owner(1) }, { ...profile, templateVmid: 9001 })).rejects.toThrow(
    /guest agent is not enabled.*no cloud-init drive/,
  );
  sim.addTemplate(9002, { linkedClone: false }); // not a base volume: linked clone unsupported → full clone
  await b.clone({ vmid, owner: owner(1) }, { ...profile, templateVmid: 9002 });
  expect(String(sim.vm(vmid)?.config.scsi0)).toBe(`local:${vmid}/vm-${vmid}-disk-0.raw,size=8G`);
});

test('the template check reads agent by key: type=virtio,enabled=1 is enabled, enabled=0,type=virtio is not', async () => {
  const b = backend();
  sim.addTemplate(9003);
  sim.vm(9003)!.config.agent = 'type=virtio,enabled=1';
  await expect(b.validateTemplate(9003)).resolves.toMatchObject({ agent: 'type=virtio,enabled=1' });
  sim.vm(9003)!.config.agent = 'enabled=0,type=virtio';
  await expect(b.validateTemplate(9003)).rejects.toThrow('the QEMU guest agent is not enabled');
});

test('destroy waits for a clone of ours still running and destroys it even before it was tagged', async () => {
  const b = backend();
  sim.state.latency.linkedCloneMs = 300;
  const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  clients.push(client);
  // What an earlier clone attempt leaves when its activity failed after PVE accepted the clone: a task
  // still copying, then a VM with our description but without the tags the attempt never got to write.
  await client.post('/nodes/pve/qemu/9000/clone', {
    newid: 7005,
    full: false,
    description: ownerDescription(owner(1), 1),
  });
  expect(sim.vm(7005)?.config.lock).toBe('clone');
  expect(await b.destroy({ vmid: 7005, owner: owner(2) })).toBe('not-ours');
  expect(sim.vm(7005)?.config.tags).toBeUndefined();
  expect(await b.destroy({ vmid: 7005, owner: owner(1) })).toBe('destroyed');
  expect(sim.vm(7005)).toBeUndefined();
});

test('snapshot and rollback: disk-only, idempotent, and the rollback leaves the VM stopped with its config back', async () => {
  const b = backend();
  const vmid = await b.allocate(owner(1), 1);
  await b.clone({ vmid, owner: owner(1) }, profile);
  await b.start({ vmid, owner: owner(1) });
  await b.snapshot({ vmid, owner: owner(1) }, 'clean');
  await b.snapshot({ vmid, owner: owner(1) }, 'clean'); // a retried activity: the snapshot is already there
  const vm = sim.vm(vmid)!;
  expect([...vm.snapshots!.keys()]).toEqual(['clean']);
  expect(vm.snapshots!.get('clean')).toMatchObject({ vmstate: false, description: expect.stringContaining('job-1') });
  const taken = { ...vm.config };

  vm.config.cores = '16'; // what the guest did after the snapshot (the simulator's "disk" is its config)
  await b.rollback({ vmid, owner: owner(1) }, 'clean');
  expect(vm.status).toBe('stopped');
  expect(vm.config).toEqual({ ...taken, parent: 'clean' });
  await expect(b.rollback({ vmid, owner: owner(1) }, 'nope')).rejects.toThrow(
    new PermanentBackendError(`task qmrollback ${vmid}: snapshot 'nope' does not exist`),
  );
  // Refused before Proxmox is asked: the one snapshot-name rule (common/snapshot-names.ts).
  await expect(b.snapshot({ vmid, owner: owner(1) }, 'current')).rejects.toThrow(
    'snapshot name "current" is reserved by Proxmox',
  );
});

test('snapshot and rollback refuse a VM that is not ours and leave it untouched', async () => {
  sim.addVm(7000, {}, true); // foreign, untagged
  sim.addVm(7001, { tags: 'agentlab', description: 'agentlab-owner: not json' }, true);
  const b = backend({ min: 7000, max: 7003 });
  const vmid = await b.allocate(owner(1), 1);
  await b.clone({ vmid, owner: owner(1) }, profile);
  for (const target of [7000, 7001, vmid]) {
    const before = structuredClone(sim.vm(target)!.config);
    await expect(b.snapshot({ vmid: target, owner: owner(2) }, 'clean')).rejects.toBeInstanceOf(PermanentBackendError);
    await expect(b.rollback({ vmid: target, owner: owner(2) }, 'clean')).rejects.toThrow(/refusing to touch it/);
    expect(sim.vm(target)!.snapshots).toBeUndefined();
    expect(sim.vm(target)!.config).toEqual(before);
  }
  expect(sim.vm(7000)!.status).toBe('running');
  expect(sim.vm(7001)!.status).toBe('running');
  expect(sim.state.tasks.running()).toEqual([]);
  await expect(b.snapshot({ vmid: 7099, owner: owner(1) }, 'clean')).rejects.toThrow('VM 7099 does not exist');
});

test('listOwned lists only VMs carrying the agentlab tag and an owner mark', async () => {
  const b = backend();
  // The others first: allocation starts at a random VMID and skips the used ones, so ours cannot be overwritten.
  sim.addVm(7050, { description: ownerDescription(owner(2), 1) }); // our mark, no tags: a half-finished clone
  sim.addVm(7051, { description: ownerDescription(owner(3), 1), tags: 'agentlab-0123456789abcdef' }); // owner tag only
  sim.addVm(7052, { tags: 'agentlab' }, true); // our tag, no mark
  sim.addVm(7053, { tags: 'agentlabs;not-agentlab', description: ownerDescription(owner(4), 1) });
  sim.addVm(7054, {}, true); // plainly foreign
  const vmid = await b.allocate(owner(1), 1);
  await b.clone({ vmid, owner: owner(1) }, profile);
  expect(await b.listOwned()).toEqual([{ vmid, jobId: 'job-1', workflowId: 'job-1', running: false }]);
});

test("a clone by a worker restarted since the allocation marks the VM with the call's attempt", async () => {
  const vmid = await backend().allocate(owner('restarted'), 2);
  await backend().clone({ vmid, owner: owner('restarted') }, profile, 2); // a fresh backend: nothing pending in memory
  expect(sim.vm(vmid)?.config.description).toBe(ownerDescription(owner('restarted'), 2, { profile: profile.name }));
  // And a retried allocation of that attempt finds it by its mark, rather than picking a second VMID.
  expect(await backend().allocate(owner('restarted'), 2)).toBe(vmid);
});

test('diskGb grows the boot disk before the first boot, once: a retried configure finds it grown', async () => {
  const b = backend();
  const vmid = await b.allocate(owner(1), 1);
  await b.clone({ vmid, owner: owner(1) }, profile);
  const job = { jobId: 'job-1', controllerUrl: 'http://10.77.0.1:8844' };
  await b.configure({ vmid, owner: owner(1) }, { ...profile, diskGb: 20 }, guestBoot(vmid, job));
  expect(sim.vm(vmid)?.config.scsi0).toBe(`local-lvm:vm-${vmid}-disk-0,size=20G`);
  await b.configure({ vmid, owner: owner(1) }, { ...profile, diskGb: 20 }, guestBoot(vmid, job)); // the activity retried after a worker crash
  expect(sim.state.tasks.list().filter((t) => t.type === 'resize')).toHaveLength(1);
  await b.configure({ vmid, owner: owner(1) }, profile, guestBoot(vmid, job)); // no diskGb: the disk is left as it is
  expect(sim.vm(vmid)?.config.scsi0).toMatch(/,size=20G$/);
});

test("a diskGb below the template's disk is a permanent error naming the profile, both sizes and Proxmox's refusal", async () => {
  const b = backend();
  const vmid = await b.allocate(owner(1), 1);
  await b.clone({ vmid, owner: owner(1) }, profile);
  const refused = b.configure(
    { vmid, owner: owner(1) },
    { ...profile, diskGb: 4 },
    guestBoot(vmid, { jobId: 'job-1', controllerUrl: 'http://x' }),
  );
  await expect(refused).rejects.toBeInstanceOf(PermanentBackendError);
  await expect(refused).rejects.toThrow(
    "profile yolo-ephemeral asks for a 4G root disk, but template 9000's boot disk (scsi0) is 8G: " +
      'Proxmox refused to resize it: shrinking disks is not supported',
  );
  expect(sim.vm(vmid)?.config.scsi0).toMatch(/,size=8G$/);
});

test("the clone's name and description name the job, its profile, repo and Web UI page, and nothing secret", async () => {
  const b = backend(undefined, { uiUrl: 'https://ops:hunter2@temporal.example:8233/', namespace: 'agents' });
  const vmid = await b.allocate(owner('named'), 1);
  await b.clone({ vmid, owner: owner('named') }, profile, 1, { repo: 'https://git.example/team/app.git' });
  const { name, description } = sim.vm(vmid)!.config;
  expect(name).toBe('agentlab-job-named');
  expect(String(description).split('\n').slice(1)).toEqual([
    'Created by agentlab; destroyed when its job ends.',
    'job: job-named',
    'profile: yolo-ephemeral',
    'repo: https://git.example/team/app.git',
    'Temporal Web UI: https://temporal.example:8233/namespaces/agents/workflows/job-named',
  ]);
  expect(parseOwner(description)).toEqual({ jobId: 'job-named', workflowId: 'job-named', attempt: 1 });
  expect(await b.listOwned()).toEqual([{ vmid, jobId: 'job-named', workflowId: 'job-named', running: false }]);
});

test('a VM name is agentlab-<jobId> within the 63 characters of a DNS name, ending in a letter or digit', () => {
  expect(vmName('job-1')).toBe('agentlab-job-1');
  expect(vmName(`a${'b'.repeat(52)}-${'c'.repeat(8)}`)).toBe(`agentlab-a${'b'.repeat(52)}`); // no trailing "-"
  expect(vmName('Job_With.Dots')).toBe('agentlab-job-with-dots');
});
