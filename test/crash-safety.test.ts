// SIGKILL the worker mid-job; after a restart every job reaches its terminal state with exactly one VM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createExampleRepo } from '../common/example-repo';
import type { SandboxState } from '../common/states';
import { SCRIPTED_AGENT, TestStack, journal, liveSandboxes, sleep } from './support/stack';

const CASES: [SandboxState, string][] = [
  ['PROVISIONING', 'job-crash-provisioning'],
  ['BOOTING', 'job-crash-booting'],
  ['RUNNING', 'job-crash-running'],
];

describe('crash safety', () => {
  // One host per case, so that the three crashes run at once: each kills only its own worker.
  const hosts = new Map<SandboxState, { stack: TestStack; repo: string }>();

  beforeAll(async () => {
    await Promise.all(
      CASES.map(async ([state]) => {
        // Emulated VM latencies give the crash a window to land in.
        const stack = await new TestStack({ local: { cloneDelay: '3s', bootDelay: '3s' } }).init();
        await stack.startWorker();
        hosts.set(state, { stack, repo: await createExampleRepo(stack.home) });
      }),
    );
  });
  afterAll(() => Promise.all([...hosts.values()].map(({ stack }) => stack.close())));

  test.concurrent.each(CASES)(
    'worker SIGKILLed during %s: the job completes, one VM created, none left',
    async (state, jobId) => {
      const { stack, repo } = hosts.get(state)!;
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
    },
  );
});
