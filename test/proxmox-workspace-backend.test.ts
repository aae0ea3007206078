// The Proxmox backend's workspace storage against the simulator, without Temporal: every call is idempotent
// (activities retry after a crash), the holder is never a sandbox to the reconciler, and the volume is refused
// to a VM that is not the caller's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import { snippetName } from '../backends/proxmox/snippet';
import { PermanentBackendError } from '../backends/contract';
import type { Owner } from '../common/contract';
import type { WorkspaceRef } from '../common/workspace';
import { PveSim } from '../simulators/proxmox/server';
import { guestBoot } from './support/guest-boot';
import { pveTestProfile } from './support/pve-stack';

let sim: PveSim;
let client: ProxmoxClient;
let snippetsDir: string;
let b: ProxmoxBackend;

const profile = pveTestProfile({ cores: 2, memoryMb: 2048 });
const ws: WorkspaceRef = {
  name: 'ws',
  backend: 'proxmox',
  node: 'pve',
  sizeGb: 3,
  workflowId: 'agentlab-workspace-ws',
};
const owner: Owner = { jobId: 'job-1', workflowId: 'job-1' };
const holder = () => [...sim.state.vms.values()].find((vm) => vm.config.name === 'agentlab-ws-ws');

beforeEach(async () => {
  snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-snippets-'));
  sim = new PveSim({ snippetsDir, authFailureDelayMs: 10 });
  await sim.listen();
  sim.addTemplate(9000);
  client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  b = new ProxmoxBackend({ client, node: 'pve', vmidRange: { min: 7000, max: 7099 }, snippetsDir, pollIntervalMs: 10 });
});
afterEach(async () => {
  await client.close();
  await sim.close();
  rmSync(snippetsDir, { recursive: true, force: true });
});

test('create, attach, detach and delete are idempotent; the guest is told to mount the disk', async () => {
  await b.workspaces.create(ws);
  await b.workspaces.create(ws); // a retried create finds its holder
  expect([...sim.state.vms.values()].filter((vm) => vm.config.name === 'agentlab-ws-ws')).toHaveLength(1);
  expect(await b.listOwned()).toEqual([]); // the reconciler's list: no sandbox here

  const vmid = await b.allocate(owner, 1);
  await b.clone({ vmid, owner }, profile, 1);
  await b.workspaces.attach({ vmid, owner }, ws);
  await b.workspaces.attach({ vmid, owner }, ws); // retried: already there
  expect(holder()!.config.scsi1).toBeUndefined();
  expect(String(sim.vm(vmid)!.config.scsi1)).toMatch(
    new RegExp(`^local-lvm:vm-${vmid}-disk-\\d+,serial=agentlab-workspace`),
  );

  await b.configure(
    { vmid, owner },
    profile,
    guestBoot(vmid, { jobId: owner.jobId, controllerUrl: 'http://127.0.0.1:1' }),
  );
  const userData = YAML.parse(
    readFileSync(join(snippetsDir, snippetName(vmid)), 'utf8').replace(/^#cloud-config\n/, ''),
  );
  expect(JSON.parse(userData.write_files[0].content)).toMatchObject({ workspace: '/workspace' });
  expect(userData.mounts[0][1]).toBe('/workspace');

  await b.start({ vmid, owner });
  await b.snapshot({ vmid, owner }, 'clean'); // a snapshot names the workspace disk: the detach deletes it first
  await b.workspaces.detach({ vmid, owner }, ws);
  await b.workspaces.detach({ vmid, owner }, ws); // retried: the volume is home
  expect(sim.vm(vmid)!.config.scsi1).toBeUndefined();
  expect(String(holder()!.config.scsi1)).toContain('serial=agentlab-workspace');

  expect(await b.destroy({ vmid, owner })).toBe('destroyed');
  await b.workspaces.delete(ws);
  await b.workspaces.delete(ws); // retried: no holder is success
  expect(holder()).toBeUndefined();
});

test("a VM that is not the caller's never gets the volume, and delete refuses while it is away", async () => {
  await b.workspaces.create(ws);
  const vmid = await b.allocate(owner, 1);
  await b.clone({ vmid, owner }, profile, 1);
  const other: Owner = { jobId: 'job-2', workflowId: 'job-2' };
  await expect(b.workspaces.attach({ vmid, owner: other }, ws)).rejects.toThrow(PermanentBackendError);
  expect(holder()!.config.scsi1).toBeDefined();
  await b.workspaces.detach({ vmid, owner: other }, ws); // nothing of ours there: success, nothing moved
  await b.workspaces.attach({ vmid, owner }, ws);
  await expect(b.workspaces.delete(ws)).rejects.toThrow(/not on its holder VM/);
});
