// move_disk's reassign (`target-vmid`) in the simulator: the volume is renamed to the target's VMID and its
// contents go with it; each refusal is qemu-server's move_vm_disk text, before the task or in it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxClient } from '../backends/proxmox/client';
import { PveSim } from '../simulators/proxmox/server';

let sim: PveSim;
let client: ProxmoxClient;
let volumes: string;

beforeEach(async () => {
  volumes = mkdtempSync(join(tmpdir(), 'pve-sim-volumes-'));
  sim = new PveSim({ authFailureDelayMs: 0, volumeDataDir: volumes });
  await sim.listen();
  client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  sim.addVm(300, { scsi1: 'local-lvm:vm-300-disk-1,serial=ws,size=2G' });
  sim.addVm(301, { scsi0: 'local-lvm:vm-301-disk-0,size=8G' });
});
afterEach(async () => {
  await client.close();
  await sim.close();
  rmSync(volumes, { recursive: true, force: true });
});

const move = async (vmid: number, params: Record<string, string | number>) =>
  client.waitTask(await client.post<string>(`/nodes/pve/qemu/${vmid}/move_disk`, params), { initialIntervalMs: 10 });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => 'succeeded',
    (err: Error) => err.message,
  );

test('the volume moves to the target VM, renamed to its VMID, with its contents; the source forgets it', async () => {
  const before = sim.state.volumeDir('local-lvm:vm-300-disk-1')!;
  mkdirSync(before);
  writeFileSync(join(before, 'note'), 'kept');
  await move(300, { disk: 'scsi1', 'target-vmid': 301, 'target-disk': 'scsi1' });
  expect(sim.vm(300)!.config.scsi1).toBeUndefined();
  expect(sim.vm(301)!.config.scsi1).toBe('local-lvm:vm-301-disk-1,serial=ws,size=2G');
  expect(readFileSync(join(sim.state.volumeDir('local-lvm:vm-301-disk-1')!, 'note'), 'utf8')).toBe('kept');
  expect(sim.state.ledger.at(-1)).toEqual({
    op: 'move-disk',
    vmid: 300,
    target: 301,
    volume: 'local-lvm:vm-300-disk-1',
    renamedTo: 'local-lvm:vm-301-disk-1',
  });
  // Destroying the VM frees the volume and its contents.
  await client.waitTask(await client.delete<string>('/nodes/pve/qemu/301', { purge: 1 }), { initialIntervalMs: 10 });
  expect(sim.state.ledger.at(-1)).toMatchObject({ op: 'destroy', vmid: 301 });
  expect(sim.state.ledger.at(-1)!.volumes).toContain('local-lvm:vm-301-disk-1');
});

test("refusals are qemu-server's texts", async () => {
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 301, storage: 'local' }))).toMatch(
    /either set 'storage' or 'target-vmid', but not both/,
  );
  expect(await failure(move(300, { disk: 'scsi1' }))).toMatch(/both 'storage' and 'target-vmid' missing/);
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 300 }))).toMatch(
    /must be different than source VMID to reassign disk/,
  );
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 399 }))).toMatch(/could not find target VM 399/);
  expect(await failure(move(300, { disk: 'scsi2', 'target-vmid': 301 }))).toMatch(
    /Disk 'scsi2' for VM '300' does not exist/,
  );
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 301, 'target-disk': 'scsi0' }))).toMatch(
    /Target disk key 'scsi0' is already in use for VM '301'/,
  );
  sim.vm(300)!.status = 'running';
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 301 }))).toMatch(
    /Cannot move disk to another VM while the source VM is running - detach first/,
  );
  sim.vm(300)!.status = 'stopped';
  sim.vm(300)!.config.lock = 'backup';
  expect(await failure(move(300, { disk: 'scsi1', 'target-vmid': 301 }))).toMatch(/VM is locked \(backup\)/);
  expect(sim.vm(300)!.config.scsi1).toBeDefined(); // nothing moved
});
