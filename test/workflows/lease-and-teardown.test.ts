// Leases and teardown, in-process: lease expiry ends a running job TIMEOUT and tears down; a teardown that
// cannot destroy waits for an operator's --force (Update or Signal), and a plain destroy is refused meanwhile.
import { destroyByNameSignal, destroyUpdate, renewLeaseUpdate } from '../../common/contract';
import { InProcessStack, updateRefusal } from '../support/in-process-worker';

const REPO = 'https://git.example.com/demo.git';
const AGENT = 'sleep 120';

describe('leases and teardown (in-process worker)', () => {
  let stack: InProcessStack;

  beforeAll(async () => {
    stack = await InProcessStack.start({
      profiles: [
        {
          name: 'local-fragile',
          backend: 'local',
          ttl: '10m',
          provisioning: { attempts: 1, bootTimeout: '1s', bootstrapTimeout: '60s' },
          teardown: { attempts: 2 },
        },
      ],
    });
  });
  afterEach(() => {
    stack.backend.faults = {};
  });
  afterAll(() => stack?.close());

  test('lease expiry while the agent runs: TIMEOUT, teardown, and the TIMEOUT outcome', async () => {
    const handle = await stack.startJob({
      jobId: 'fast-lease-expiry',
      repo: REPO,
      task: 'take too long',
      agentCommand: AGENT,
      ttlMs: 3000,
    });
    const running = await stack.claimAsGuest('fast-lease-expiry');
    expect(running).toMatchObject({ state: 'RUNNING', jobStatus: 'RUNNING' });

    const outcome = await handle.result();
    expect(outcome).toMatchObject({ status: 'TIMEOUT', state: 'DESTROYED', vmid: running.vmid });
    const d = await stack.describe('fast-lease-expiry');
    const states = d.timeline.map((t) => t.state);
    expect(states.slice(-3)).toEqual(['RUNNING', 'TIMEOUT', 'DESTROYED']);
    expect(d.timeline.find((t) => t.state === 'TIMEOUT')).toMatchObject({ note: 'lease expired' });
    expect(d.message).toBe('the sandbox lease expired');
    // It did not outlive its lease by more than a workflow task: the timer is the lease.
    const timedOutAt = d.timeline.find((t) => t.state === 'TIMEOUT')!.at;
    expect(timedOutAt).toBeGreaterThanOrEqual(running.leaseExpiresAt!);
    expect(timedOutAt - running.leaseExpiresAt!).toBeLessThan(2000);
    expect(stack.backend.live()).not.toContain(running.vmid);
    expect(stack.backend.journal.filter((e) => e.jobId === 'fast-lease-expiry').map((e) => e.op)).toEqual([
      'clone',
      'destroy',
    ]);
  });

  test('renew extends a RUNNING lease past its old expiry; renew above the maximum is refused', async () => {
    const handle = await stack.startJob({ jobId: 'fast-renew', ttlMs: 3000 });
    const running = await stack.waitForState('fast-renew', (d) => d.state === 'RUNNING', 'RUNNING');
    const { leaseExpiresAt } = await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: 10 * 60_000 }] });
    expect(leaseExpiresAt).toBeGreaterThan(running.leaseExpiresAt! + 60_000);
    expect(await updateRefusal(handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: 25 * 3_600_000 }] }))).toBe(
      'ttl 25h is above the maximum 24h of profile local',
    );
    // The lease timer moved with the renewal: the history's timers say so without waiting out the old one.
    const timers = (await stack.history('fast-renew'))
      .map((e) => e.timerStartedEventAttributes?.startToFireTimeout?.seconds)
      .filter((s) => s !== undefined && s !== null)
      .map(Number);
    expect(Math.max(...timers)).toBeGreaterThan(9 * 60);
    expect((await stack.describe('fast-renew')).leaseExpiresAt).toBe(leaseExpiresAt);
  });

  test('TIMEOUT with a failed teardown refuses a plain destroy and waits for --force, which destroys', async () => {
    stack.backend.faults = { failDestroy: true };
    const handle = await stack.startJob({ jobId: 'fast-timeout-force', ttlMs: 1000 });
    const timedOut = await stack.waitForState('fast-timeout-force', (d) => d.state === 'TIMEOUT', 'TIMEOUT');
    await stack.activityFailed('fast-timeout-force', 'destroyVm'); // both attempts spent: waiting for an operator
    expect(await stack.pendingActivities('fast-timeout-force')).toEqual([]); // waiting, not retrying
    expect(stack.backend.live()).toContain(timedOut.vmid);
    expect(stack.backend.ops('fast-timeout-force', 'destroy')).toEqual(['destroy', 'destroy']);

    expect(await updateRefusal(handle.executeUpdate(destroyUpdate, { args: [{ force: false }] }))).toBe(
      'cannot destroy sandbox in state TIMEOUT: destroy is allowed only in READY, RUNNING, STOPPED; use --force to override',
    );
    stack.backend.faults = {};
    await handle.executeUpdate(destroyUpdate, { args: [{ force: true }] });
    expect(await handle.result()).toMatchObject({ status: 'TIMEOUT', state: 'DESTROYED' });
    expect(stack.backend.live()).not.toContain(timedOut.vmid);
    expect(stack.backend.ops('fast-timeout-force', 'destroy')).toHaveLength(3);
  });

  test('FAILED provisioning with a failed teardown waits for a forced destroy Signal, which destroys once', async () => {
    stack.backend.faults = { neverReady: true, failDestroy: true };
    const handle = await stack.startJob({
      jobId: 'fast-failed-force',
      profile: 'local-fragile',
      repo: REPO,
      task: 'never starts',
      agentCommand: AGENT,
    });
    const failed = await stack.waitForState('fast-failed-force', (d) => d.state === 'FAILED', 'FAILED');
    expect(failed.jobStatus).toBe('FAILED');
    expect(failed.message).toContain('did not report an address');
    await stack.activityFailed('fast-failed-force', 'destroyVm');
    expect(stack.backend.live()).toContain(failed.vmid);

    stack.backend.faults = {};
    await handle.signal(destroyByNameSignal, { force: true, reason: 'clean up' });
    expect(await handle.result()).toMatchObject({ status: 'FAILED', state: 'DESTROYED' });
    expect(stack.backend.journal.filter((e) => e.jobId === 'fast-failed-force').map((e) => e.op)).toEqual([
      'clone',
      'destroy',
    ]);
  });
});
