// SIGKILL the worker mid-job; after a restart every job reaches its terminal state with exactly one VM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createExampleRepo } from '../common/example-repo';
import type { SandboxState } from '../common/states';
import { SCRIPTED_AGENT, TestStack, journal, liveSandboxes, sleep } from './support/stack';

describe('crash safety', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    // Emulated VM latencies give the crash a window to land in.
    stack = await new TestStack({ local: { cloneDelay: '3s', bootDelay: '3s' } }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  test.each<[SandboxState, string]>([
    ['PROVISIONING', 'job-crash-provisioning'],
    ['BOOTING', 'job-crash-booting'],
    ['RUNNING', 'job-crash-running'],
  ])('worker SIGKILLed during %s: the job completes, one VM created, none left', async (state, jobId) => {
    const started = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      `survive a crash in ${state}`,
      '--id',
      jobId,
      '--detach',
      '--agent-command',
      `SCRIPTED_AGENT_SLEEP=4 ${SCRIPTED_AGENT}`,
    ]);
    expect(started.code).toBe(0);
    await stack.waitForState(jobId, (d) => d.state === state, state);
    await stack.killWorkers('SIGKILL');
    await sleep(1500);
    await stack.startWorker();

    await stack.waitForClose(jobId, 120_000);
    const final = await stack.describe(jobId);
    expect(final).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED', exitCode: 0 });
    const entries = journal(stack, jobId);
    expect(entries.filter((e) => e.op === 'clone')).toHaveLength(1);
    expect(entries.filter((e) => e.op === 'destroy')).toHaveLength(1);
    expect(liveSandboxes(stack)).toEqual([]);
    const log = readFileSync(join(stack.dataDir, 'jobs', jobId, 'agent.log'), 'utf8');
    expect(log).toContain(`survive a crash in ${state}`);
  });
});
