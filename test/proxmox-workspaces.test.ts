// Persistent workspaces on the Proxmox simulator: the volume lives on a never-started holder VM, moves to each
// job's VM with move_disk (reassign) and back before that VM is destroyed, and is never destroyed with it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspaceDocumentSchema } from '../cli/json-schemas';
import type { ReconcileReport } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import type { LedgerEntry } from '../simulators/proxmox/state';
import { serveRepo, type GitDaemon } from './support/git-daemon';
import { leftoverVms, startPveStack, type PveStack } from './support/pve-stack';
import { SCRIPTED_AGENT } from './support/stack';

let pve: PveStack;
let repo: GitDaemon;

beforeAll(async () => {
  pve = await startPveStack({ sim: { latency: { bootMs: 300 } } });
  repo = await serveRepo(await createExampleRepo(pve.stack.home));
});
afterAll(async () => {
  await repo?.close();
  await pve?.close();
});

const cli = async (args: string[]) => {
  const result = await pve.stack.cli(args, { timeoutMs: 40_000 });
  if (result.code !== 0) throw new Error(`agentlab ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result;
};
const runJob = (id: string, agentCommand: string) =>
  cli([
    ...['job', 'run', '--id', id, '--profile', 'yolo-ephemeral', '--repo', repo.url, '--task', 'use the workspace'],
    ...['--workspace', 'pve-ws', '--agent-command', agentCommand, '--json'],
  ]);
const holderOf = () => [...pve.sim.state.vms.values()].find((vm) => vm.config.name === 'agentlab-ws-pve-ws');
const volumeOf = (config: Record<string, unknown>) => /^([^,]+)/.exec(String(config.scsi1 ?? ''))?.[1];

test('a workspace volume moves holder → job VM → holder for two jobs, keeps its data and is never destroyed with them', async () => {
  const created = workspaceDocumentSchema.parse(
    JSON.parse(
      (await cli(['workspace', 'create', 'pve-ws', '--size', '2G', '--profile', 'yolo-ephemeral', '--json'])).stdout,
    ),
  );
  expect(created).toMatchObject({ status: 'AVAILABLE', backend: 'proxmox', sizeGb: 2, holder: null });
  const holder = holderOf()!;
  expect(holder.status).toBe('stopped');
  expect(String(holder.config.scsi1)).toMatch(
    new RegExp(`^local-lvm:vm-${holder.vmid}-disk-1,serial=agentlab-workspace,size=2G$`),
  );
  expect(String(holder.config.tags).split(';')).not.toContain('agentlab');

  // The reconciler lists only sandboxes: the holder is neither checked nor destroyed.
  const reconciled = await cli(['sandbox', 'reconcile', '--json']);
  const { reports } = JSON.parse(reconciled.stdout) as { reports: ReconcileReport[] };
  expect(reports).toEqual([
    { node: pve.stack.node, backend: 'proxmox', checked: 0, destroyed: [], kept: [], failed: [] },
  ]);
  expect(holderOf()?.vmid).toBe(holder.vmid);

  await runJob('pve-ws-first', `echo first > "$AGENTLAB_WORKSPACE/note.txt" && ${SCRIPTED_AGENT}`);
  await runJob(
    'pve-ws-second',
    `test "$(cat "$AGENTLAB_WORKSPACE/note.txt")" = first && test "$PWD" = "$AGENTLAB_WORKSPACE/repo"`,
  );

  const shown = workspaceDocumentSchema.parse(
    JSON.parse((await cli(['workspace', 'show', 'pve-ws', '--json'])).stdout),
  );
  expect(shown).toMatchObject({ status: 'AVAILABLE', holder: null, waiting: [] });
  expect(shown.attachments.map((a) => a.jobId)).toEqual(['pve-ws-first', 'pve-ws-second']);
  const [vm1, vm2] = shown.attachments.map((a) => a.vmid!);

  const ledger: LedgerEntry[] = pve.sim.state.ledger;
  const moves = ledger.filter((e) => e.op === 'move-disk').map((e) => [e.vmid, e.target]);
  expect(moves).toEqual([
    [holder.vmid, vm1],
    [vm1, holder.vmid],
    [holder.vmid, vm2],
    [vm2, holder.vmid],
  ]);
  // Every name the volume had; the job VMs' destroys freed none of them.
  const names = new Set(ledger.flatMap((e) => (e.op === 'move-disk' ? [e.volume!, e.renamedTo!] : [])));
  const destroys = ledger.filter((e) => e.op === 'destroy');
  expect(destroys.map((e) => e.vmid).sort()).toEqual([vm1, vm2].sort());
  for (const d of destroys) expect(d.volumes!.filter((v) => names.has(v))).toEqual([]);
  // Back on the holder, with what the first job wrote.
  const volume = volumeOf(holderOf()!.config)!;
  expect(readFileSync(join(pve.sim.state.volumeDir(volume)!, 'note.txt'), 'utf8')).toBe('first\n');
  expect(leftoverVms(pve.sim)).toEqual([holder.vmid]);

  // Destroying the workspace destroys the holder with its volume.
  await cli(['workspace', 'destroy', 'pve-ws', '--yes']);
  expect(holderOf()).toBeUndefined();
  expect(ledger.at(-1)).toMatchObject({ op: 'destroy', vmid: holder.vmid, volumes: [volume] });
  expect(existsSync(pve.sim.state.volumeDir(volume)!)).toBe(false);
}, 90_000);
