// Revert to the clean snapshot, in-process: the states table's refusals change nothing on the backend; a forced
// revert under a running job ends it FAILED; a clean snapshot that failed is not fatal, but revert is refused.
import { destroyUpdate, revertUpdate } from '../../common/contract';
import { InProcessStack, updateRefusal } from '../support/in-process-worker';

describe('revert (in-process worker)', () => {
  let stack: InProcessStack;

  beforeAll(async () => {
    stack = await InProcessStack.start();
  });
  afterEach(() => {
    stack.backend.faults = {};
  });
  afterAll(() => stack?.close());

  test('--no-restart rolls back to STOPPED, --restart boots again; the clean snapshot is taken after first boot', async () => {
    const handle = await stack.startJob({ jobId: 'fast-rev' });
    const running = await stack.waitForState('fast-rev', (d) => d.state === 'RUNNING', 'RUNNING');
    expect(running.cleanSnapshot).toBe(true);
    expect(stack.backend.vms.get(running.vmid!)!.snapshots).toEqual(['clean']);

    expect(await handle.executeUpdate(revertUpdate, { args: [{ force: false, restart: false }] })).toEqual({
      state: 'STOPPED',
    });
    expect(stack.backend.vms.get(running.vmid!)!.running).toBe(false);
    const stopped = await stack.describe('fast-rev');
    expect(stopped.timeline.at(-1)).toMatchObject({ state: 'STOPPED', note: 'reverted to snapshot clean' });

    expect(await handle.executeUpdate(revertUpdate, { args: [{ force: false, restart: true }] })).toEqual({
      state: 'RUNNING',
    });
    expect(stack.backend.ops('fast-rev')).toEqual([
      ...['allocate', 'clone', 'configure', 'start', 'snapshot'],
      ...['stop', 'rollback'], // revert --no-restart
      ...['stop', 'rollback', 'start'], // revert --restart
    ]);
    expect((await stack.describe('fast-rev')).timeline.map((t) => t.state)).toEqual([
      ...['REQUESTED', 'PROVISIONING', 'BOOTING', 'READY', 'RUNNING'],
      ...['STOPPED', 'STOPPED', 'BOOTING', 'RUNNING'],
    ]);
    await handle.executeUpdate(destroyUpdate, { args: [{ force: false }] });
    await handle.result();
  });

  test('revert is refused in PROVISIONING even with --force, and under a running job without it', async () => {
    const release = stack.backend.holdClones();
    const early = await stack.startJob({ jobId: 'fast-rev-early' });
    await stack.waitForState('fast-rev-early', (d) => d.state === 'PROVISIONING' && d.vmid !== undefined, 'cloning');
    expect(await updateRefusal(early.executeUpdate(revertUpdate, { args: [{ force: true, restart: true }] }))).toBe(
      'cannot revert sandbox in state PROVISIONING: revert is allowed only in READY, RUNNING, STOPPED',
    );
    release();
    await stack.waitForState('fast-rev-early', (d) => d.state === 'RUNNING', 'RUNNING');
    expect(stack.backend.ops('fast-rev-early', 'rollback')).toEqual([]);

    const job = await stack.startJob({
      jobId: 'fast-rev-job',
      repo: 'https://git.example.com/demo.git',
      task: 'slow',
      agentCommand: 'sleep 120',
    });
    const running = await stack.claimAsGuest('fast-rev-job');
    const callsBefore = stack.backend.calls.length;
    expect(await updateRefusal(job.executeUpdate(revertUpdate, { args: [{ force: false, restart: true }] }))).toBe(
      'cannot revert sandbox in state RUNNING while its job is RUNNING: the agent would lose its work; use --force to override',
    );
    expect(stack.backend.calls.length).toBe(callsBefore); // refused by the validator: no activity ran
    expect((await stack.describe('fast-rev-job')).state).toBe('RUNNING');

    // Forced: the revert kills the agent, so the job ends FAILED with the reason and its throwaway sandbox goes.
    await job.executeUpdate(revertUpdate, { args: [{ force: true, restart: false }] });
    expect(await job.result()).toMatchObject({
      status: 'FAILED',
      state: 'DESTROYED',
      vmid: running.vmid,
      message: 'the sandbox was reverted while its job was running: the agent was killed',
    });
    expect(stack.backend.ops('fast-rev-job').slice(-3)).toEqual(['stop', 'rollback', 'destroy']);
  });

  test('a clean snapshot that fails is not fatal: the sandbox runs, says why, and refuses revert', async () => {
    stack.backend.faults = { failSnapshot: 'VM is locked (backup)' };
    const handle = await stack.startJob({ jobId: 'fast-rev-nosnap' });
    const d = await stack.waitForState('fast-rev-nosnap', (x) => x.state === 'RUNNING', 'RUNNING');
    expect(d).toMatchObject({ cleanSnapshot: false, cleanSnapshotError: 'VM is locked (backup)' });
    expect(stack.backend.ops('fast-rev-nosnap', 'snapshot')).toHaveLength(3); // the snapshot's own retry policy
    expect(await updateRefusal(handle.executeUpdate(revertUpdate, { args: [{ force: false, restart: true }] }))).toBe(
      'sandbox has no clean snapshot to revert to (taking it failed: VM is locked (backup))',
    );
    expect(stack.backend.ops('fast-rev-nosnap', 'rollback')).toEqual([]);
    expect(stack.backend.vms.get(d.vmid!)!.running).toBe(true);
  });
});
