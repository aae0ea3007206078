// Leases are durable timers; renew and destroy follow the seed's allowed-operations table. End to end, through the
// CLI and a worker process; test/workflows/ proves the same workflow rules in-process, in seconds (lease expiry
// to the second, teardown waiting for --force from TIMEOUT and from FAILED, the Signals' forced destroy).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { createExampleRepo } from '../common/example-repo';
import { temporalCliPath } from '../common/temporal-server';
import { activityFailed } from './support/histories';
import { SCRIPTED_AGENT, TestStack, liveSandboxes, setFaults, temporalAddress } from './support/stack';

/** History JSON carries payloads base64-encoded: decode every "data" field to search the plain text. */
function decodePayloads(historyJson: string): string {
  return [...historyJson.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)]
    .map((m) => Buffer.from(m[1]!, 'base64').toString('utf8'))
    .join('\n');
}

describe('leases, renew and destroy', () => {
  let stack: TestStack;
  let repo: string;
  const sleepyAgent = (seconds: number) => `SCRIPTED_AGENT_SLEEP=${seconds} ${SCRIPTED_AGENT}`;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterEach(() => setFaults(stack, {}));
  afterAll(() => stack.close());

  const runDetached = async (id: string, extra: string[]) => {
    const result = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'wait a while',
      '--id',
      id,
      '--detach',
      ...extra,
    ]);
    expect(result.code).toBe(0);
  };

  /** A fact, not a pause: the history shows destroyVm failed for good (its retries are the server's). */
  const teardownGaveUp = (jobId: string) => activityFailed(stack.client, jobId, 'destroyVm');

  test('lease expiry while the agent runs gives TIMEOUT, teardown, and exit code 4', async () => {
    const result = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'take too long',
      '--id',
      'job-lease-expiry',
      '--ttl',
      '6s',
      '--agent-command',
      sleepyAgent(120),
      '--json',
    ]);
    expect(result.code).toBe(4);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ status: 'TIMEOUT', sandbox: { state: 'DESTROYED' } });
    const states = doc.timeline.map((t: { state: string }) => t.state);
    expect(states).toEqual(expect.arrayContaining(['RUNNING', 'TIMEOUT', 'DESTROYED']));
    expect(states.indexOf('TIMEOUT')).toBeGreaterThan(states.indexOf('RUNNING'));
    expect(liveSandboxes(stack)).not.toContain(doc.sandbox.vmid);
  });

  test('renew in RUNNING extends the lease past its old expiry; destroy from RUNNING tears down', async () => {
    await runDetached('job-renew', ['--ttl', '30s', '--agent-command', sleepyAgent(120)]);
    const running = await stack.waitForState('job-renew', (d) => d.state === 'RUNNING', 'RUNNING');
    const renew = await stack.cli(['sandbox', 'lease', 'renew', String(running.vmid), '--ttl', '10m', '--json']);
    expect(renew.code).toBe(0);
    const renewed = Date.parse(JSON.parse(renew.stdout).leaseExpiresAt);
    expect(renewed).toBeGreaterThan(running.leaseExpiresAt! + 60_000);
    // The lease is the timer, and it moved: a fact in the history instead of waiting out the old expiry.
    const events = (await stack.client.workflow.getHandle('job-renew').fetchHistory()).events ?? [];
    const timers = events.map((e) => Number(e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0));
    expect(Math.max(...timers)).toBeGreaterThan(9 * 60);
    expect((await stack.describe('job-renew')).state).toBe('RUNNING');

    const destroy = await stack.cli(['sandbox', 'destroy', String(running.vmid), '--yes']);
    expect(destroy.code).toBe(0);
    await stack.waitForClose('job-renew');
    const final = await stack.describe('job-renew');
    expect(final).toMatchObject({ state: 'DESTROYED', jobStatus: 'CANCELLED' });
  });

  test('stopping a sandbox under a running job ends the job FAILED with the reason (not RUNNING forever)', async () => {
    await runDetached('job-stopped-keep', [
      '--keepalive',
      '--agent-command',
      `SCRIPTED_AGENT_SLEEP=60 ${SCRIPTED_AGENT}`,
    ]);
    await runDetached('job-stopped', ['--agent-command', `SCRIPTED_AGENT_SLEEP=60 ${SCRIPTED_AGENT}`]);
    for (const id of ['job-stopped-keep', 'job-stopped']) {
      await stack.waitForState(id, (d) => d.jobStatus === 'RUNNING', 'its job RUNNING');
      expect((await stack.cli(['sandbox', 'stop', id])).code).toBe(0);
    }
    const reason = 'the sandbox was stopped while its job was running: the agent was killed';
    // Kept alive: the sandbox stays STOPPED for inspection; the job is over.
    const kept = await stack.waitForState('job-stopped-keep', (d) => d.jobStatus === 'FAILED', 'FAILED');
    expect(kept).toMatchObject({ state: 'STOPPED', exitCode: null, message: reason });
    // Throwaway: the job is over, so its sandbox goes.
    await stack.waitForClose('job-stopped');
    expect(await stack.describe('job-stopped')).toMatchObject({
      state: 'DESTROYED',
      jobStatus: 'FAILED',
      message: reason,
    });
    expect((await stack.cli(['sandbox', 'destroy', 'job-stopped-keep', '--yes'])).code).toBe(0);
    await stack.waitForClose('job-stopped-keep');
  });

  test('renew is rejected outside RUNNING, naming the state; destroy works from STOPPED', async () => {
    const created = await stack.cli(['sandbox', 'new', '--id', 'sbx-stopped', '--json']);
    expect(created.code).toBe(0);
    const vmid = String(JSON.parse(created.stdout).vmid);
    expect((await stack.cli(['sandbox', 'stop', vmid])).code).toBe(0);
    expect((await stack.describe('sbx-stopped')).state).toBe('STOPPED');

    const renew = await stack.cli(['sandbox', 'lease', 'renew', vmid, '--ttl', '30m']);
    expect(renew.code).toBe(1);
    expect(renew.stderr).toContain('cannot renew sandbox in state STOPPED: renew is allowed only in RUNNING');

    const tooLong = await stack.cli(['sandbox', 'start', vmid]);
    expect(tooLong.code).toBe(0);
    const aboveMax = await stack.cli(['sandbox', 'lease', 'renew', vmid, '--ttl', '25h']);
    expect(aboveMax.code).toBe(1);
    expect(aboveMax.stderr).toContain('ttl 25h is above the maximum 24h of profile local');
    expect((await stack.cli(['sandbox', 'stop', vmid])).code).toBe(0);

    expect((await stack.cli(['sandbox', 'destroy', vmid, '--yes'])).code).toBe(0);
    await stack.waitForClose('sbx-stopped');
    expect((await stack.describe('sbx-stopped')).state).toBe('DESTROYED');
    expect(liveSandboxes(stack)).not.toContain(Number(vmid));
  });

  test('destroy works from READY (a guest that never claims its bootstrap)', async () => {
    setFaults(stack, { guestRunnerBroken: true });
    await runDetached('job-ready', ['--agent-command', SCRIPTED_AGENT]);
    const ready = await stack.waitForState('job-ready', (d) => d.state === 'READY', 'READY');
    // Nobody claimed, so the cloud-init snippet still holds the token: only its hash may be in history.
    const bootstrap = JSON.parse(
      readFileSync(join(stack.dataDir, 'sandboxes', String(ready.vmid), 'cloud-init', 'bootstrap.json'), 'utf8'),
    );
    const history = JSON.stringify(await stack.client.workflow.getHandle('job-ready').fetchHistory());
    const historyJson = await execa(temporalCliPath(), [
      'workflow',
      'show',
      '--address',
      temporalAddress(),
      '--workflow-id',
      'job-ready',
      '--output',
      'json',
    ]);
    const tokenHash = createHash('sha256').update(bootstrap.token).digest('hex');
    for (const text of [history, Buffer.from(historyJson.stdout).toString(), decodePayloads(historyJson.stdout)]) {
      expect(text).not.toContain(bootstrap.token);
    }
    expect(decodePayloads(historyJson.stdout)).toContain(tokenHash);
    const destroy = await stack.cli(['sandbox', 'destroy', 'job-ready', '--yes']);
    expect(destroy.code).toBe(0);
    await stack.waitForClose('job-ready');
    expect(await stack.describe('job-ready')).toMatchObject({ state: 'DESTROYED', jobStatus: 'CANCELLED' });
    expect(liveSandboxes(stack)).not.toContain(ready.vmid);
  });

  test('TIMEOUT with a failed teardown needs --force, which destroys; sandbox prune destroys such sandboxes, asking first', async () => {
    setFaults(stack, { failDestroy: true });
    // Two at once: one for `destroy --force`, one for `prune`.
    await runDetached('job-timeout-force', ['--ttl', '4s', '--agent-command', sleepyAgent(120)]);
    await runDetached('job-prune', ['--ttl', '4s', '--agent-command', sleepyAgent(120)]);
    const timedOut = await stack.waitForState(
      'job-timeout-force',
      (d) => d.state === 'TIMEOUT' && d.timeline.some((t) => t.state === 'TIMEOUT'),
      'TIMEOUT',
    );
    expect(timedOut.jobStatus).toBe('TIMEOUT');
    const toPrune = await stack.waitForState('job-prune', (d) => d.state === 'TIMEOUT', 'TIMEOUT');
    // Teardown gave up (2 attempts) and the workflows wait for an operator.
    await teardownGaveUp('job-timeout-force');
    await teardownGaveUp('job-prune');
    expect(liveSandboxes(stack)).toEqual(expect.arrayContaining([timedOut.vmid, toPrune.vmid]));

    const plain = await stack.cli(['sandbox', 'destroy', String(timedOut.vmid), '--yes']);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('cannot destroy sandbox in state TIMEOUT');
    expect(plain.stderr).toContain('--force');

    setFaults(stack, {});
    const forced = await stack.cli(['sandbox', 'destroy', String(timedOut.vmid), '--force', '--yes']);
    expect(forced.code).toBe(0);
    await stack.waitForClose('job-timeout-force');
    expect((await stack.describe('job-timeout-force')).state).toBe('DESTROYED');
    expect(liveSandboxes(stack)).not.toContain(timedOut.vmid);

    const unconfirmed = await stack.cli(['sandbox', 'prune']);
    expect(unconfirmed.code).toBe(2);
    expect(liveSandboxes(stack)).toContain(toPrune.vmid);
    const pruned = await stack.cli(['sandbox', 'prune', '--yes', '--json']);
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.stdout).pruned).toContain('job-prune');
    await stack.waitForClose('job-prune');
    expect((await stack.describe('job-prune')).state).toBe('DESTROYED');
    expect(liveSandboxes(stack)).not.toContain(toPrune.vmid);
  });
});
