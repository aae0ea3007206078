// A guest runner that goes silent (its VM crashed, the runner was killed) fails the job after the profile's
// agent.silenceTimeout and its VM is destroyed, instead of holding the job until the lease ends; a runner
// that keeps its heartbeats (one every 5 s) through a longer run is never cut short.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createExampleRepo } from '../common/example-repo';
import { liveSandboxes, TestStack } from './support/stack';

describe('guest silence', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({
      profiles: [
        {
          name: 'watched',
          backend: 'local',
          ttl: '10m',
          provisioning: { attempts: 1, bootTimeout: '20s', bootstrapTimeout: '60s' },
          agent: { silenceTimeout: '12s' },
        },
      ],
    }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  const run = (jobId: string, agentCommand: string) =>
    stack.cli([
      ...['job', 'run', '--detach', '--id', jobId, '--profile', 'watched'],
      ...['--repo', repo, '--task', 'watched', '--agent-command', agentCommand],
    ]);

  // Concurrent: two jobs of their own on one host, and the silent one's 12 s overlap the healthy one's 20 s.
  test.concurrent('a killed runner fails the job within the silence timeout, and its VM is destroyed', async () => {
    expect((await run('job-silent', 'sleep 600')).code).toBe(0);
    const d = await stack.waitForState('job-silent', (j) => j.jobStatus === 'RUNNING', 'RUNNING');
    // The whole sandbox dies at once, as a crashed VM would: its boot process group, runner and agent.
    const { pid } = JSON.parse(readFileSync(join(stack.dataDir, 'sandboxes', String(d.vmid), 'boot.json'), 'utf8')) as {
      pid: number;
    };
    process.kill(-pid, 'SIGKILL');
    const killedAt = Date.now();
    await stack.waitForClose('job-silent', 60_000);
    const final = await stack.describe('job-silent');
    expect(final).toMatchObject({ jobStatus: 'FAILED', state: 'DESTROYED' });
    expect(final.message).toMatch(/^the guest runner went silent: no heartbeat for \d+s/);
    expect(Date.now() - killedAt).toBeLessThan(40_000);
    expect(liveSandboxes(stack)).not.toContain(d.vmid);
  });

  test.concurrent('a healthy run longer than the silence timeout completes', async () => {
    expect((await run('job-heard', 'sleep 20')).code).toBe(0);
    await stack.waitForClose('job-heard', 90_000);
    expect(await stack.describe('job-heard')).toMatchObject({
      jobStatus: 'COMPLETED',
      state: 'DESTROYED',
      exitCode: 0,
    });
  });
});
