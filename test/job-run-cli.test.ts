// A job runs end to end through the CLI, the worker process, the local backend and the real guest runner.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { jobDocumentSchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import { temporalCliPath } from '../common/temporal-server';
import { serveRepo } from './support/git-daemon';
import { SCRIPTED_AGENT, TestStack, temporalAddress } from './support/stack';

describe('agentlab job run', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  test('runs the agent on a cloned repo, reports COMPLETED and destroys the sandbox', async () => {
    const result = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'add a greeting for the reviewers',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-e2e-ok',
      '--json',
    ]);
    expect(result.stderr).toContain('PROVISIONING');
    expect(result.code).toBe(0);
    const doc = jobDocumentSchema.parse(JSON.parse(result.stdout));
    expect(doc).toMatchObject({
      jobId: 'job-e2e-ok',
      status: 'COMPLETED',
      exitCode: 0,
      sandbox: { state: 'DESTROYED' },
    });
    expect(typeof doc.sandbox.vmid).toBe('number');
    expect(doc.timeline.map((t: { state: string }) => t.state)).toEqual([
      'REQUESTED',
      'PROVISIONING',
      'BOOTING',
      'READY',
      'RUNNING',
      'DESTROYED',
    ]);

    // The agent really ran on a real clone: its output and its edits came back.
    const jobDir = join(stack.dataDir, 'jobs', 'job-e2e-ok');
    expect(readFileSync(join(jobDir, 'agent.log'), 'utf8')).toContain('add a greeting for the reviewers');
    const patch = readFileSync(join(jobDir, 'artifacts', 'changes.patch'), 'utf8');
    expect(patch).toContain('NOTES.md');
    // The sandbox is gone from the backend.
    expect(existsSync(join(stack.dataDir, 'sandboxes', String(doc.sandbox.vmid)))).toBe(false);

    // Visible to Temporal's own CLI by our search attribute.
    const listed = await execa(temporalCliPath(), [
      'workflow',
      'list',
      '--address',
      temporalAddress(),
      '--output',
      'json',
      '--query',
      `AgentlabState="DESTROYED" AND WorkflowId="job-e2e-ok"`,
    ]);
    const rows = JSON.parse(listed.stdout || '[]');
    expect(rows).toHaveLength(1);
    const attributes = JSON.stringify(rows[0].searchAttributes);
    for (const name of [
      'AgentlabState',
      'AgentlabJobStatus',
      'AgentlabProfile',
      'AgentlabVmid',
      'AgentlabNode',
      'AgentlabLeaseExpiresAt',
    ]) {
      expect(attributes).toContain(name);
    }
  });

  test('a failing agent gives FAILED with its exit code, and exit 1', async () => {
    // The sandbox gets a minimal environment, so the failure is part of the agent command itself.
    const failing = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'fail please',
      '--id',
      'job-e2e-fail-7',
      '--json',
      '--agent-command',
      `SCRIPTED_AGENT_EXIT=7 ${SCRIPTED_AGENT}`,
    ]);
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout)).toMatchObject({
      status: 'FAILED',
      exitCode: 7,
      sandbox: { state: 'DESTROYED' },
    });
  });

  test("a remote's bad ref: FAILED within seconds with git's error in the result, and the sandbox is torn down", async () => {
    // (A local repository's ref is checked by the CLI before anything starts: test/local-repos.test.ts.)
    const daemon = await serveRepo(repo);
    const started = Date.now();
    const result = await stack.cli([
      ...['job', 'run', '--repo', daemon.url, '--ref', 'no-such-branch', '--task', 'x', '--id', 'job-e2e-bad-ref'],
      ...['--agent-command', SCRIPTED_AGENT, '--json'],
    ]);
    await daemon.close();
    const seconds = (Date.now() - started) / 1000;
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout) as {
      status: string;
      message: string;
      sandbox: { vmid: number; state: string };
    };
    expect(doc).toMatchObject({ status: 'FAILED', sandbox: { state: 'DESTROYED' } });
    expect(doc.message).toMatch(/preparing the repository failed: git fetch failed .*no-such-branch/s);
    expect(seconds).toBeLessThan(30); // generous for a loaded 2-core machine; typically ~2 s
    expect(existsSync(join(stack.dataDir, 'sandboxes', String(doc.sandbox.vmid)))).toBe(false);
    // The agent never started: its log holds only the runner's reason.
    const log = readFileSync(join(stack.dataDir, 'jobs', 'job-e2e-bad-ref', 'agent.log'), 'utf8');
    expect(log).not.toContain('scripted-agent');
    expect(log).toContain('no-such-branch');
  });

  test.each([
    [['--profile', 'no-such-profile'], /--profile: unknown profile "no-such-profile"/],
    [['--repo', 'ext::sh -c touch% /tmp/pwned'], /--repo: .*remote helper/],
    [['--repo', '--upload-pack=touch /tmp/pwned'], /--repo: .*command-line option/],
    [['--repo', 'not a url'], /--repo: /],
    [['--ttl', 'forever'], /--ttl: "forever" is not a duration/],
  ])('rejects bad input %j before anything is created', async (override, message) => {
    const args = [
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'x',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-bad-input',
    ];
    for (let i = 0; i < override.length; i += 2) {
      const at = args.indexOf(override[i]!);
      if (at >= 0) args[at + 1] = override[i + 1]!;
      else args.push(override[i]!, override[i + 1]!);
    }
    const result = await stack.cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    await expect(stack.client.workflow.getHandle('job-bad-input').describe()).rejects.toThrow(/not found/i);
  });
});
