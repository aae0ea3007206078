// The operator's commands against a real dev server and worker: logs, artifacts, diff, cancel,
// profiles, completion, confirmations, flag order, and the exit codes of DESIGN.md.
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { errorSchema, jobDocumentSchema, jobListSchema, sandboxListSchema, statusSchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import { CLI, SCRIPTED_AGENT, TestStack } from './support/stack';

describe('agentlab commands', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
    const done = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'leave a note',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-cli-done',
    ]);
    expect(done.code).toBe(0);
  });
  afterAll(() => stack.close());

  test('job run shows transitions with durations, the sandbox, the Web UI link, streams the log, then the outcome', async () => {
    const run = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'stream me',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-cli-stream',
    ]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/PROVISIONING \(REQUESTED took [\d.]+m?s\)/);
    expect(run.stderr).toMatch(/READY vmid=\d+ address=127\.0\.0\.1/);
    expect(run.stderr).toContain('/namespaces/default/workflows/job-cli-stream');
    expect(run.stderr).toContain('job job-cli-stream COMPLETED (exit code 0)');
    // stdout is the agent's output, whole and in order.
    expect(run.stdout).toBe(readFileSync(join(stack.dataDir, 'jobs', 'job-cli-stream', 'agent.log'), 'utf8'));
    expect(run.stdout).toContain('scripted-agent: task: stream me');
  });

  test('job logs prints the stored log; --json gives NDJSON with offsets', async () => {
    const stored = readFileSync(join(stack.dataDir, 'jobs', 'job-cli-done', 'agent.log'), 'utf8');
    const logs = await stack.cli(['job', 'logs', 'job-cli-done']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe(stored);
    const ndjson = await stack.cli(['job', 'logs', 'job-cli-done', '--json']);
    const records = ndjson.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(records[0].offset).toBe(0);
    expect(records.map((r: { text: string }) => r.text).join('')).toBe(stored);
  });

  test('job logs --follow streams a running job to its end, losing and repeating nothing', async () => {
    const started = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'slow work',
      '--id',
      'job-cli-follow',
      '--detach',
      '--agent-command',
      `SCRIPTED_AGENT_SLEEP=3 ${SCRIPTED_AGENT}`,
    ]);
    expect(started.code).toBe(0);
    await stack.waitForState('job-cli-follow', (d) => d.state === 'RUNNING', 'RUNNING');
    const followed = await stack.cli(['job', 'logs', 'job-cli-follow', '--follow']);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain('scripted-agent: done');
    expect(followed.stdout).toBe(readFileSync(join(stack.dataDir, 'jobs', 'job-cli-follow', 'agent.log'), 'utf8'));
  });

  test("job diff is exactly the scripted agent's change: applied to the repo it reproduces its edits", async () => {
    const diff = await stack.cli(['job', 'diff', 'job-cli-done']);
    expect(diff.code).toBe(0);
    const clone = join(mkdtempSync(join(stack.home, 'apply-')), 'repo');
    await execa('git', ['clone', '--quiet', repo, clone]);
    await execa('git', ['apply', '--index', '-'], { cwd: clone, input: diff.stdout });
    expect(readFileSync(join(clone, 'NOTES.md'), 'utf8')).toBe(
      '# Notes from the scripted agent\n\nTask: leave a note\n',
    );
    expect(readFileSync(join(clone, 'README.md'), 'utf8')).toMatch(/\nAgent note: leave a note\n$/);
    const changed = (await execa('git', ['diff', '--cached', '--name-only'], { cwd: clone })).stdout.split('\n');
    expect(changed.sort()).toEqual(['NOTES.md', 'README.md']);
  });

  test('job artifacts lists and copies what the guest uploaded, with sha256', async () => {
    const out = mkdtempSync(join(stack.home, 'artifacts-'));
    const listed = await stack.cli(['job', 'artifacts', 'job-cli-done', '--out', out, '--json']);
    expect(listed.code).toBe(0);
    const names = JSON.parse(listed.stdout)
      .artifacts.map((a: { name: string }) => a.name)
      .sort();
    expect(names).toEqual(['agent.log', 'changes.patch', 'report.json']);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report).toMatchObject({ status: 'COMPLETED', exitCode: 0 });
  });

  test('job cancel tears the sandbox down and ends CANCELLED; without --yes off a terminal it refuses', async () => {
    await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'long',
      '--id',
      'job-cli-cancel',
      '--detach',
      '--agent-command',
      `SCRIPTED_AGENT_SLEEP=120 ${SCRIPTED_AGENT}`,
    ]);
    await stack.waitForState('job-cli-cancel', (d) => d.state === 'RUNNING', 'RUNNING');
    const refused = await stack.cli(['job', 'cancel', 'job-cli-cancel']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('without --yes');
    const refusedDestroy = await stack.cli(['sandbox', 'destroy', 'job-cli-cancel']);
    expect(refusedDestroy.code).toBe(2);
    expect((await stack.describe('job-cli-cancel')).state).toBe('RUNNING');

    expect((await stack.cli(['job', 'cancel', '--yes', 'job-cli-cancel'])).code).toBe(0);
    await stack.waitForClose('job-cli-cancel');
    expect(await stack.describe('job-cli-cancel')).toMatchObject({ jobStatus: 'CANCELLED', state: 'DESTROYED' });
  });

  test('--json documents have the documented shapes', async () => {
    jobDocumentSchema.parse(JSON.parse((await stack.cli(['job', 'show', 'job-cli-done', '--json'])).stdout));
    const list = jobListSchema.parse(JSON.parse((await stack.cli(['job', 'list', '--json'])).stdout));
    expect(list.jobs.map((j) => j.jobId)).toContain('job-cli-done');
    sandboxListSchema.parse(JSON.parse((await stack.cli(['sandbox', 'list', '--all', '--json'])).stdout));
    statusSchema.parse(JSON.parse((await stack.cli(['status', '--json'])).stdout));
    errorSchema.parse(JSON.parse((await stack.cli(['job', 'show', 'job-nope', '--json'])).stdout));
  });

  test('colours on a terminal only, and never with NO_COLOR', async () => {
    const onTerminal = (id: string, env: NodeJS.ProcessEnv) =>
      execa(
        'script',
        [
          '-qec',
          `${process.execPath} ${CLI} job run --repo ${repo} --task t --agent-command ${SCRIPTED_AGENT} --id ${id}`,
          '/dev/null',
        ],
        {
          env: { ...stack.env, ...env },
        },
      );
    expect((await onTerminal('job-cli-color', {})).stdout).toContain('\x1b[32mCOMPLETED\x1b[0m');
    expect((await onTerminal('job-cli-nocolor', { NO_COLOR: '1' })).stdout).not.toContain('\x1b[');
    expect((await stack.cli(['job', 'show', 'job-cli-done'])).stderr).not.toContain('\x1b[');
  });

  test('flags work before or after positional arguments', async () => {
    const after = await stack.cli(['job', 'show', 'job-cli-done', '--json']);
    const before = await stack.cli(['job', 'show', '--json', 'job-cli-done']);
    expect(after.code).toBe(0);
    expect(JSON.parse(before.stdout)).toEqual(JSON.parse(after.stdout));
  });

  test('unknown job id: exit 3 with a clear message, in text and as a JSON error', async () => {
    const text = await stack.cli(['job', 'show', 'job-does-not-exist']);
    expect(text.code).toBe(3);
    expect(text.stderr).toContain('job-does-not-exist not found');
    const json = await stack.cli(['job', 'show', 'job-does-not-exist', '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      error: { code: 'not_found', message: expect.stringContaining('not found') },
    });
  });

  test('no Temporal reachable: exit 5 naming the address tried', async () => {
    const result = await stack.cli(['job', 'list'], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('127.0.0.1:1');
  });

  test('profile list and show; an unknown profile is exit 3', async () => {
    const list = JSON.parse((await stack.cli(['profile', 'list', '--json'])).stdout);
    expect(list.profiles.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['yolo-ephemeral', 'yolo-workspace', 'interactive-dev', 'local']),
    );
    const show = JSON.parse((await stack.cli(['profile', 'show', 'yolo-ephemeral', '--json'])).stdout);
    expect(show).toMatchObject({ backend: 'proxmox', templateVmid: 9000, ttl: '3h', diskGb: null }); // the template's
    const missing = await stack.cli(['profile', 'show', 'nope']);
    expect(missing.code).toBe(3);
  });

  test('completion scripts are valid and know the commands', async () => {
    const bash = await stack.cli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    await execa('bash', ['-n'], { input: bash.stdout });
    const completed = await execa('bash', [
      '-c',
      `${bash.stdout}\nCOMP_WORDS=(agentlab sandbox lease ''); COMP_CWORD=3; _agentlab; echo "\${COMPREPLY[*]}"`,
    ]);
    expect(completed.stdout.split(' ')).toEqual(['renew', '--help']);
    const fish = await stack.cli(['completion', 'fish']);
    expect(fish.stdout).toContain("-a 'up down status job sandbox workspace profile agents secrets doctor completion'");
    expect((await stack.cli(['completion', 'tcsh'])).code).toBe(2);
  });

  test('status counts sandboxes by state and lists recent failures', async () => {
    const status = JSON.parse((await stack.cli(['status', '--json'])).stdout);
    expect(status.temporal.reachable).toBe(true);
    expect(status.sandboxes.DESTROYED).toBeGreaterThanOrEqual(1);
    expect(Array.isArray(status.recentFailures)).toBe(true);
  });
});
