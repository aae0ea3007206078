// The `clean` snapshot after first boot and `sandbox revert`, through the CLI, a worker, the simulator and real guest runners.
import { revertSchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import type { JobDescription } from '../common/contract';
import { serveRepo, type GitDaemon } from './support/git-daemon';
import { FOREIGN_VMID, leftoverVms, startPveStack, type PveStack } from './support/pve-stack';
import { SCRIPTED_AGENT } from './support/stack';

let pve: PveStack;
let repo: GitDaemon;
/** Set by a test: the next VM that starts gets lock `backup`, as if a backup job grabbed it right after boot. */
let lockNextStart = false;

beforeAll(async () => {
  pve = await startPveStack({
    sim: {
      latency: { bootMs: 300 },
      onStart: ({ vmid }) => {
        if (!lockNextStart) return;
        lockNextStart = false;
        pve.sim.vm(vmid)!.config.lock = 'backup';
      },
    },
  });
  repo = await serveRepo(await createExampleRepo(pve.stack.home));
});
afterAll(async () => {
  await repo?.close();
  await pve?.close();
});

/** Tasks of earlier tests are not this test's: VMIDs are reused once a VM is destroyed. */
let earlierTasks = new Set<string>();
beforeEach(() => {
  earlierTasks = new Set(pve.sim.state.tasks.list().map((t) => t.upid));
});
const tasks = (type: string, vmid: number) =>
  pve.sim.state.tasks.list().filter((t) => t.type === type && t.id === String(vmid) && !earlierTasks.has(t.upid));

/** The simulator's "disk" is the config: after a rollback it is the snapshot's (plus description and parent). */
function expectConfigOfSnapshot(vmid: number): void {
  const vm = pve.sim.vm(vmid)!;
  const { description, parent, ...config } = vm.config;
  expect(parent).toBe('clean');
  expect(String(description)).toContain('agentlab-owner: ');
  expect(config).toEqual(vm.snapshots!.get('clean')!.config);
}

async function newSandbox(id: string): Promise<JobDescription> {
  const created = await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', id, '--json']);
  expect(created).toMatchObject({ code: 0 });
  return pve.stack.describe(id);
}

async function destroy(id: string, force = false): Promise<void> {
  const args = ['sandbox', 'destroy', id, '--yes', ...(force ? ['--force'] : [])];
  expect((await pve.stack.cli(args)).code).toBe(0);
  await pve.stack.waitForClose(id);
}

test('sandbox new takes the clean snapshot; revert --no-restart rolls back to STOPPED, --restart boots again', async () => {
  const created = await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', 'sbx-rev', '--json']);
  expect(created.code).toBe(0);
  const doc = JSON.parse(created.stdout);
  expect(doc).toMatchObject({ state: 'RUNNING', cleanSnapshot: true });
  const vmid = doc.vmid as number;
  const vm = pve.sim.vm(vmid)!;
  expect([...vm.snapshots!.keys()]).toEqual(['clean']);
  expect(vm.snapshots!.get('clean')!.vmstate).toBe(false);
  expect(tasks('qmsnapshot', vmid).map((t) => t.exitstatus)).toEqual(['OK']);
  expect((await pve.stack.describe('sbx-rev')).cleanSnapshot).toBe(true);
  const show = await pve.stack.cli(['sandbox', 'show', 'sbx-rev']);
  expect(show.stdout).toMatch(/Clean snapshot: +yes/);

  // What the agent would change on the disk after the snapshot.
  const booted = { cores: vm.config.cores, memory: vm.config.memory };
  vm.config.cores = '8';
  vm.config.memory = '16384';

  // Off a terminal, revert destroys disk state only with --yes; without it nothing happens.
  const unconfirmed = await pve.stack.cli(['sandbox', 'revert', 'sbx-rev', '--no-restart']);
  expect(unconfirmed.code).toBe(2);
  expect(unconfirmed.stderr).toContain('without --yes');
  expect(tasks('qmrollback', vmid)).toEqual([]);
  expect(vm.status).toBe('running');

  const stopped = await pve.stack.cli(['sandbox', 'revert', 'sbx-rev', '--yes', '--no-restart', '--json']);
  expect(stopped.code).toBe(0);
  expect(revertSchema.parse(JSON.parse(stopped.stdout))).toEqual({
    jobId: 'sbx-rev',
    state: 'STOPPED',
    snapshot: 'clean',
    restarted: false,
  });
  expect(vm.status).toBe('stopped');
  expect(tasks('qmrollback', vmid).map((t) => t.exitstatus)).toEqual(['OK']);
  expectConfigOfSnapshot(vmid);
  expect(vm.config).toMatchObject(booted);
  const afterStop = await pve.stack.describe('sbx-rev');
  expect(afterStop.state).toBe('STOPPED');
  expect(afterStop.timeline.at(-1)).toMatchObject({ state: 'STOPPED', note: 'reverted to snapshot clean' });

  vm.config.cores = '8';
  const restarted = await pve.stack.cli(['sandbox', 'revert', 'sbx-rev', '--yes', '--restart']);
  expect(restarted.code).toBe(0);
  expect(restarted.stderr).toContain('reverted to its clean snapshot; it is RUNNING');
  expect(vm.status).toBe('running');
  expect(tasks('qmrollback', vmid)).toHaveLength(2);
  expectConfigOfSnapshot(vmid);
  const d = await pve.stack.describe('sbx-rev');
  expect(d).toMatchObject({ state: 'RUNNING', cleanSnapshot: true, address: expect.stringMatching(/^127\.77\./) });
  expect(d.timeline.map((t) => t.state)).toEqual([
    ...['REQUESTED', 'PROVISIONING', 'BOOTING', 'READY', 'RUNNING'],
    ...['STOPPED', 'STOPPED', 'BOOTING', 'RUNNING'],
  ]);

  // Neither flag: a sandbox that was not STOPPED is booted again.
  const byDefault = await pve.stack.cli(['sandbox', 'revert', String(vmid), '--yes', '--json']);
  expect(JSON.parse(byDefault.stdout)).toMatchObject({ state: 'RUNNING', restarted: true });
  expect(tasks('qmrollback', vmid)).toHaveLength(3);

  await destroy('sbx-rev');
  expect(pve.sim.vm(vmid)).toBeUndefined(); // the snapshot went with the VM
});

test('user snapshots on Proxmox: save on a STOPPED VM, restore rolls the disk back to it', async () => {
  const { vmid } = await newSandbox('sbx-user-snap');
  const vm = pve.sim.vm(vmid!)!;
  expect((await pve.stack.cli(['sandbox', 'stop', 'sbx-user-snap'])).code).toBe(0);
  vm.config.cores = '3';
  expect((await pve.stack.cli(['sandbox', 'snapshot', 'save', 'sbx-user-snap', 'three-cores'])).code).toBe(0);
  expect([...vm.snapshots!.keys()]).toEqual(['clean', 'three-cores']);
  expect(vm.snapshots!.get('three-cores')!.vmstate).toBe(false);
  expect(tasks('qmsnapshot', vmid!).map((t) => t.exitstatus)).toEqual(['OK', 'OK']);

  vm.config.cores = '7';
  const restored = await pve.stack.cli(['sandbox', 'snapshot', 'restore', 'sbx-user-snap', 'three-cores', '--yes']);
  expect(restored.code).toBe(0);
  expect(vm.config.cores).toBe('3');
  expect(vm.config.parent).toBe('three-cores');
  expect(tasks('qmrollback', vmid!).map((t) => t.exitstatus)).toEqual(['OK']);
  expect(await pve.stack.describe('sbx-user-snap')).toMatchObject({ state: 'STOPPED' });
  await destroy('sbx-user-snap');
  expect(pve.sim.vm(vmid!)).toBeUndefined();
});

// The states table's other refusals (PROVISIONING, even with --force) are proven in-process: test/workflows/revert.test.ts.
test('revert is refused while a job runs unless --force, changing nothing', async () => {
  const run = await pve.stack.cli([
    ...['job', 'run', '--profile', 'yolo-ephemeral', '--repo', repo.url, '--task', 'slow', '--id', 'job-rev'],
    ...['--agent-command', `SCRIPTED_AGENT_SLEEP=120 ${SCRIPTED_AGENT}`, '--detach'],
  ]);
  expect(run.code).toBe(0);
  const running = await pve.stack.waitForState(
    'job-rev',
    (d) => d.state === 'RUNNING' && d.jobStatus === 'RUNNING',
    'its job RUNNING',
  );
  expect(running.cleanSnapshot).toBe(true);
  const vmid = running.vmid!;
  const before = structuredClone(pve.sim.vm(vmid)!.config);
  const refused = await pve.stack.cli(['sandbox', 'revert', 'job-rev', '--yes', '--json']);
  expect(refused.code).toBe(1);
  expect(JSON.parse(refused.stdout)).toEqual({
    error: {
      code: 'rejected',
      message:
        'cannot revert sandbox in state RUNNING while its job is RUNNING: the agent would lose its work; use --force to override',
      details: null,
    },
  });
  expect(pve.sim.vm(vmid)!.status).toBe('running');
  expect(pve.sim.vm(vmid)!.config).toEqual(before);
  expect(tasks('qmrollback', vmid)).toEqual([]);
  expect((await pve.stack.describe('job-rev')).state).toBe('RUNNING');

  const forced = await pve.stack.cli(['sandbox', 'revert', 'job-rev', '--yes', '--force', '--no-restart']);
  expect(forced.code).toBe(0);
  expect(tasks('qmrollback', vmid).map((t) => t.exitstatus)).toEqual(['OK']);
  // The revert killed the agent: the job ends FAILED with the reason, and its throwaway sandbox goes.
  await pve.stack.waitForClose('job-rev');
  expect(await pve.stack.describe('job-rev')).toMatchObject({
    jobStatus: 'FAILED',
    state: 'DESTROYED',
    message: 'the sandbox was reverted while its job was running: the agent was killed',
  });
});

test('a clean snapshot that fails is not fatal: the sandbox runs, says why, and refuses revert', async () => {
  lockNextStart = true;
  const d = await newSandbox('sbx-nosnap');
  expect(d).toMatchObject({ state: 'RUNNING', cleanSnapshot: false });
  expect(d.cleanSnapshotError).toContain('VM is locked (backup)');
  const vmid = d.vmid!;
  expect(pve.sim.vm(vmid)!.snapshots).toBeUndefined();
  expect(tasks('qmsnapshot', vmid).map((t) => t.exitstatus)).toEqual(Array(3).fill('VM is locked (backup)'));

  const refused = await pve.stack.cli(['sandbox', 'revert', 'sbx-nosnap', '--yes']);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('sandbox has no clean snapshot to revert to (taking it failed:');
  expect(tasks('qmrollback', vmid)).toEqual([]);
  expect(pve.sim.vm(vmid)!.status).toBe('running');

  delete pve.sim.vm(vmid)!.config.lock; // the backup finished
  await destroy('sbx-nosnap');
  expect(leftoverVms(pve.sim).map((id) => pve.sim.vm(id))).toEqual([]);
  expect(pve.sim.vm(FOREIGN_VMID)!.snapshots).toBeUndefined();
});
