// Continue-as-new, in-process: a parked sandbox hands over to a fresh run that keeps its VM, lease, state and
// job outcome; operations and the lease work in the continued run, and its teardown destroys that VM once.
import { renewLeaseUpdate, startUpdate, stopUpdate, destroyUpdate } from '../../common/contract';
import { InProcessStack } from '../support/in-process-worker';
import { eventually } from '../support/stack';

/** Low enough that a few renewals fill a run; a parked sandbox's first run is longer than this already. */
const HISTORY_LIMIT = 40;

describe('continue-as-new of parked sandboxes (in-process worker)', () => {
  let stack: InProcessStack;

  beforeAll(async () => {
    stack = await InProcessStack.start({ continueAsNewAfterEvents: HISTORY_LIMIT });
  });
  afterAll(() => stack?.close());

  /** The fact that a run ended by handing over: its last event. */
  const handedOver = async (jobId: string, runId: string) =>
    (await stack.history(jobId, runId)).at(-1)?.workflowExecutionContinuedAsNewEventAttributes != null;

  test('a bare sandbox keeps its VM, lease and state across runs; stop, start and destroy work in a later run', async () => {
    const handle = await stack.startJob({ jobId: 'fast-can-bare' });
    const first = await stack.waitForState('fast-can-bare', (d) => d.state === 'RUNNING', 'RUNNING');
    const firstRunId = handle.firstExecutionRunId;
    // Provisioning alone passes the limit: the parked sandbox hands over at once.
    await eventually('the first hand-over', () => handedOver('fast-can-bare', firstRunId));

    // Renewals fill the next runs; those racing a hand-over are not lost (Temporal moves them to the next run).
    for (let i = 0; i < 8; i++) await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: (20 + i) * 60_000 }] });
    const racing = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: (40 + i) * 60_000 }] }),
      ),
    );
    const execution = await handle.describe();
    expect(execution.runId).not.toBe(firstRunId);
    expect(execution.historyLength).toBeLessThan(HISTORY_LIMIT + 15);

    const now = await stack.describe('fast-can-bare');
    expect(now).toMatchObject({ state: 'RUNNING', jobStatus: 'RUNNING', vmid: first.vmid, address: first.address });
    expect(now.continuedRuns).toBeGreaterThanOrEqual(2);
    expect(racing.map((r) => r.leaseExpiresAt)).toContain(now.leaseExpiresAt); // whichever renewal came last
    expect(now.timeline.map((t) => t.state).slice(0, 4)).toEqual(['REQUESTED', 'PROVISIONING', 'BOOTING', 'READY']);

    // Operations that run activities work in the continued run, on the same VM.
    expect(await handle.executeUpdate(stopUpdate)).toEqual({ state: 'STOPPED' });
    expect(stack.backend.vms.get(first.vmid!)!.running).toBe(false);
    expect(await handle.executeUpdate(startUpdate)).toEqual({ state: 'RUNNING' });
    expect(stack.backend.vms.get(first.vmid!)!.running).toBe(true);

    await handle.executeUpdate(destroyUpdate, { args: [{ force: false }] });
    expect(await handle.result()).toMatchObject({ status: 'COMPLETED', state: 'DESTROYED', vmid: first.vmid });
    expect(stack.backend.journal.filter((e) => e.jobId === 'fast-can-bare')).toEqual([
      { op: 'clone', vmid: first.vmid, jobId: 'fast-can-bare' },
      { op: 'destroy', vmid: first.vmid, jobId: 'fast-can-bare' },
    ]);
  });

  test('a keepalive job keeps its outcome after it hands over; the lease timer of the continued run ends it', async () => {
    const handle = await stack.startJob({
      jobId: 'fast-can-keep',
      repo: 'https://git.example.com/demo.git',
      task: 'note and stay',
      agentCommand: 'true',
      keepalive: true,
      ttlMs: 5000,
    });
    await stack.claimAsGuest('fast-can-keep');
    await stack.reportResult('fast-can-keep', { status: 'COMPLETED', exitCode: 0, message: 'agent exited 0' });
    const done = await stack.waitForState('fast-can-keep', (d) => d.jobStatus === 'COMPLETED', 'COMPLETED');
    expect(done).toMatchObject({ state: 'RUNNING', exitCode: 0, message: 'agent exited 0' });

    await eventually('a hand-over', () => handedOver('fast-can-keep', handle.firstExecutionRunId));
    const continued = await stack.describe('fast-can-keep');
    expect(continued.continuedRuns).toBeGreaterThanOrEqual(1);
    expect(continued).toMatchObject({
      jobStatus: 'COMPLETED',
      exitCode: 0,
      message: done.message,
      vmid: done.vmid,
      leaseExpiresAt: done.leaseExpiresAt,
    });

    // The lease is the continued run's timer: expiry tears the sandbox down; the job's status stays COMPLETED.
    expect(await handle.result()).toMatchObject({ status: 'COMPLETED', state: 'DESTROYED', vmid: done.vmid });
    const final = await stack.describe('fast-can-keep');
    expect(final.timeline.at(-2)).toMatchObject({ state: 'TIMEOUT', note: 'lease expired' });
    expect(final.timeline.at(-2)!.at).toBeGreaterThanOrEqual(done.leaseExpiresAt!);
    expect(stack.backend.journal.filter((e) => e.jobId === 'fast-can-keep').map((e) => e.op)).toEqual([
      'clone',
      'destroy',
    ]);
  });
});
