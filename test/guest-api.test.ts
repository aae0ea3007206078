// The guest API of a real worker, driven the way a hostile or confused guest would: every refusal
// comes with the right status and leaves every job exactly as it was.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobDescription } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { RateLimiter } from '../worker/rate-limiter';
import { eventually, liveSandboxes, setFaults, sleep, TestStack } from './support/stack';

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  url: string,
  init: { method: string; body?: string | Buffer; credential?: string },
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (init.credential) headers.authorization = `Bearer ${init.credential}`;
  if (typeof init.body === 'string') headers['content-type'] = 'application/json';
  const res = await fetch(url, { method: init.method, body: init.body, headers });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

/** What must not change when the guest API refuses something. */
const snapshot = (d: JobDescription) => ({
  state: d.state,
  jobStatus: d.jobStatus,
  exitCode: d.exitCode,
  message: d.message,
  timeline: d.timeline.length,
});

describe('guest API refusals', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({
      guestApi: { maxArtifactBytes: 64 * 1024 },
      profiles: [
        {
          name: 'short-token',
          backend: 'local',
          ttl: '10m',
          provisioning: { attempts: 1, bootTimeout: '20s', bootstrapTimeout: '5m', bootstrapTokenTtl: '2s' },
        },
      ],
    }).init();
    // The sandboxes boot without a runner: this test plays the guest.
    setFaults(stack, { guestRunnerBroken: true });
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(async () => {
    try {
      for (const id of ['guest-api-a', 'guest-api-b', 'guest-api-expired', 'guest-api-repeat']) {
        await stack.cli(['sandbox', 'destroy', id, '--yes', '--force']);
        await stack.waitForClose(id);
      }
      expect(liveSandboxes(stack)).toEqual([]);
    } finally {
      await stack.close();
    }
  });

  async function startJob(jobId: string, profile = 'local'): Promise<string> {
    const started = await stack.cli([
      ...['job', 'run', '--detach', '--id', jobId, '--profile', profile],
      ...['--repo', repo, '--task', 'x', '--agent-command', 'true'],
    ]);
    expect(started.code).toBe(0);
    const d = await stack.waitForState(jobId, (j) => j.state === 'READY', 'READY');
    const file = join(stack.dataDir, 'sandboxes', String(d.vmid), 'cloud-init', 'bootstrap.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { token: string }).token;
  }

  const bootstrap = (jobId: string, token: string, vmid = 0) =>
    call(`${stack.guestApiUrl}/v1/bootstrap`, { method: 'POST', body: JSON.stringify({ token, jobId, vmid }) });
  const jobUrl = (jobId: string, rest: string) => `${stack.guestApiUrl}/v1/jobs/${jobId}/${rest}`;

  let credentialA = '';

  test('a token is single use: the second claim is 403 and the job keeps its first claim', async () => {
    const token = await startJob('guest-api-a');
    const first = await bootstrap('guest-api-a', token);
    expect(first.status).toBe(200);
    credentialA = first.body.runnerCredential as string;
    expect(credentialA).toMatch(/^[0-9a-f]{64}$/);
    const before = snapshot(await stack.waitForState('guest-api-a', (d) => d.state === 'RUNNING', 'RUNNING'));

    const again = await bootstrap('guest-api-a', token);
    expect(again.status).toBe(403);
    expect(again.body.error).toMatch(/already used/);
    expect(snapshot(await stack.describe('guest-api-a'))).toEqual(before);
    // The first credential still works: the refused claim did not replace it.
    const heartbeat = await call(jobUrl('guest-api-a', 'heartbeat'), {
      method: 'POST',
      body: JSON.stringify({ phase: 'running' }),
      credential: credentialA,
    });
    expect(heartbeat.status).toBe(200);
  });

  test("a runner repeating its claim (the answer was lost) gets it again; another's credential does not", async () => {
    const token = await startJob('guest-api-repeat');
    const ours = randomBytes(32).toString('hex');
    const claim = (runnerCredential: string) =>
      call(`${stack.guestApiUrl}/v1/bootstrap`, {
        method: 'POST',
        body: JSON.stringify({ token, jobId: 'guest-api-repeat', vmid: 0, runnerCredential }),
      });
    const first = await claim(ours);
    expect(first.status).toBe(200);
    expect(first.body.runnerCredential).toBe(ours);
    await stack.waitForState('guest-api-repeat', (d) => d.state === 'RUNNING', 'RUNNING');

    const repeated = await claim(ours);
    expect(repeated.status).toBe(200);
    expect(repeated.body.job).toEqual(first.body.job);
    const stranger = await claim(randomBytes(32).toString('hex'));
    expect(stranger.status).toBe(403);
    expect(stranger.body.error).toMatch(/already used/);
    const malformed = await claim('not-hex');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/runnerCredential/);
  });

  test('an expired token is 403, and the job still waits for a valid claim', async () => {
    const token = await startJob('guest-api-expired', 'short-token');
    await sleep(2500); // the profile's token lives 2 s
    const before = snapshot(await stack.describe('guest-api-expired'));
    const late = await bootstrap('guest-api-expired', token);
    expect(late.status).toBe(403);
    expect(snapshot(await stack.describe('guest-api-expired'))).toEqual(before);
    expect(before.state).toBe('READY');
  });

  test("job A's runner credential is 403 on every route of job B; B is unchanged", async () => {
    const tokenB = await startJob('guest-api-b');
    const claimB = await bootstrap('guest-api-b', tokenB);
    expect(claimB.status).toBe(200);
    const before = snapshot(await stack.waitForState('guest-api-b', (d) => d.state === 'RUNNING', 'RUNNING'));

    const attempts = [
      call(jobUrl('guest-api-b', 'result'), {
        method: 'POST',
        body: JSON.stringify({ status: 'COMPLETED', exitCode: 0, message: 'forged' }),
        credential: credentialA,
      }),
      call(jobUrl('guest-api-b', 'logs?offset=0'), {
        method: 'POST',
        body: Buffer.from('forged'),
        credential: credentialA,
      }),
      call(jobUrl('guest-api-b', 'artifacts/report.json'), {
        method: 'PUT',
        body: Buffer.from('{}'),
        credential: credentialA,
      }),
      call(jobUrl('guest-api-b', 'heartbeat'), {
        method: 'POST',
        body: JSON.stringify({ phase: 'forged' }),
        credential: credentialA,
      }),
    ];
    for (const reply of await Promise.all(attempts)) expect(reply.status).toBe(403);
    // No credential at all: 401.
    expect((await call(jobUrl('guest-api-b', 'heartbeat'), { method: 'POST', body: '{}' })).status).toBe(401);

    // The guest API answers only after its signal is in the history (it awaits it), so the history is
    // final for these requests: no signal from outside a workflow (admission's slotGranted is one) reached B.
    const history = await stack.client.workflow.getHandle('guest-api-b').fetchHistory();
    const fromClients = (history.events ?? []).filter(
      (e) =>
        e.workflowExecutionSignaledEventAttributes &&
        !e.workflowExecutionSignaledEventAttributes.externalWorkflowExecution,
    );
    expect(fromClients.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName)).toEqual([]);
    expect(snapshot(await stack.describe('guest-api-b'))).toEqual(before);
    const jobDir = join(stack.dataDir, 'jobs', 'guest-api-b');
    expect(existsSync(join(jobDir, 'agent.log')) ? readFileSync(join(jobDir, 'agent.log'), 'utf8') : '').toBe('');
    expect(existsSync(join(jobDir, 'artifacts', 'report.json'))).toBe(false);
  });

  test('an upload over the limit is 413 and an artifact named ../x is 400; nothing is written', async () => {
    const before = snapshot(await stack.describe('guest-api-a'));
    const big = await call(jobUrl('guest-api-a', 'artifacts/big.bin'), {
      method: 'PUT',
      body: Buffer.alloc(64 * 1024 + 1),
      credential: credentialA,
    });
    expect(big.status).toBe(413);
    const traversal = await call(jobUrl('guest-api-a', `artifacts/${encodeURIComponent('../x')}`), {
      method: 'PUT',
      body: Buffer.from('escape'),
      credential: credentialA,
    });
    expect(traversal.status).toBe(400);
    // index.json is the worker's own list of artifacts: a guest that could replace it could name any file.
    for (const name of ['/etc/x', '.hidden/../../x', 'a/../../x', 'index.json']) {
      const reply = await call(jobUrl('guest-api-a', `artifacts/${encodeURIComponent(name)}`), {
        method: 'PUT',
        body: Buffer.from('escape'),
        credential: credentialA,
      });
      expect({ name, status: reply.status }).toEqual({ name, status: 400 });
    }
    const jobDir = join(stack.dataDir, 'jobs', 'guest-api-a');
    expect(existsSync(join(jobDir, 'x'))).toBe(false);
    expect(existsSync(join(stack.dataDir, 'jobs', 'x'))).toBe(false);
    const artifacts = existsSync(join(jobDir, 'artifacts')) ? readdirSync(join(jobDir, 'artifacts')) : [];
    expect(artifacts).toEqual([]);
    // Exactly at the limit is fine, and recorded with its hash.
    const fits = await call(jobUrl('guest-api-a', 'artifacts/fits.bin'), {
      method: 'PUT',
      body: Buffer.alloc(64 * 1024),
      credential: credentialA,
    });
    expect(fits.status).toBe(200);
    expect(fits.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(snapshot(await stack.describe('guest-api-a'))).toEqual(before);
  });

  test('a result is idempotent; a different late result is 409', async () => {
    const result = { status: 'FAILED', exitCode: 2, message: 'agent exited with code 2' };
    const send = (body: object) =>
      call(jobUrl('guest-api-a', 'result'), { method: 'POST', body: JSON.stringify(body), credential: credentialA });
    expect((await send(result)).status).toBe(200);
    await stack.waitForState('guest-api-a', (d) => d.jobStatus === 'FAILED', 'FAILED');
    expect((await send(result)).body).toMatchObject({ accepted: true, duplicate: true });
    expect((await send({ status: 'COMPLETED', exitCode: 0, message: 'late' })).status).toBe(409);
    expect((await stack.describe('guest-api-a')).jobStatus).toBe('FAILED');
  });
});

describe('guest API bootstrap rate limit', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await new TestStack({ guestApi: { bootstrapRateLimit: { burst: 3, perMinute: 6 } } }).init();
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  test('guessing tokens from one address is cut off with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const reply = await call(`${stack.guestApiUrl}/v1/bootstrap`, {
        method: 'POST',
        body: JSON.stringify({ token: 'f'.repeat(64), jobId: 'no-such-job', vmid: 1 }),
      });
      statuses.push(reply.status);
      if (reply.status === 429) retryAfter = reply.headers.get('retry-after');
    }
    // The burst gets an answer (the job does not exist), then the address must wait.
    expect(statuses.slice(0, 3).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    await eventually(
      'a token to refill',
      async () => {
        const reply = await call(`${stack.guestApiUrl}/v1/bootstrap`, {
          method: 'POST',
          body: JSON.stringify({ token: 'f'.repeat(64), jobId: 'no-such-job', vmid: 1 }),
        });
        return reply.status !== 429;
      },
      15_000,
    );
  });
});

describe('the bootstrap rate limiter', () => {
  test('only what is spent counts: a burst, then the wait until the refill', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 6, () => now); // 2 at once, then one per 10 s
    expect(limiter.wait('a')).toBe(0);
    expect(limiter.wait('a')).toBe(0); // asking spends nothing (a successful claim is never charged)
    limiter.spend('a');
    limiter.spend('a');
    expect(limiter.wait('a')).toBe(10);
    expect(limiter.wait('b')).toBe(0); // per address
    now += 5_000;
    expect(limiter.wait('a')).toBe(5);
    now += 5_000;
    expect(limiter.wait('a')).toBe(0);
  });
});
