// One-time secrets end to end: an age bundle on the worker host reaches the agent through the guest API
// and nowhere else: not Temporal history, not the worker's or the runner's logs, not the job's log.
import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import { createExampleRepo } from '../common/example-repo';
import { GitHttpServer } from './support/git-http';
import { allFilesText } from './support/files';
import { dumpAllHistories } from './support/histories';
import { eventually, TestStack } from './support/stack';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('secrets bundles reach the agent and nothing else', () => {
  const secretsHome = mkdtempSync(join(tmpdir(), 'agentlab-secrets-e2e-'));
  let stack: TestStack;
  let git: GitHttpServer;
  const apiKey = `sk-live-${randomBytes(16).toString('hex')}`;
  const gitToken = `ghp_${randomBytes(18).toString('hex')}`;

  beforeAll(async () => {
    stack = await new TestStack({
      env: {
        AGENTLAB_SECRETS_KEY_FILE: join(secretsHome, 'keys', 'age.key'),
        AGENTLAB_SECRETS_DIR: join(secretsHome, 'secrets'),
      },
      // Long enough to read the bootstrap token off the sandbox before the runner claims it.
      local: { bootDelay: '2s' },
      profiles: [
        {
          name: 'with-secrets',
          backend: 'local',
          secretsBundle: 'job-secrets',
          keepalive: true, // the sandbox (and the runner's log) outlives the job, for inspection
          ttl: '10m',
          provisioning: { attempts: 1, bootTimeout: '20s', bootstrapTimeout: '60s' },
        },
        { name: 'missing-bundle', backend: 'local', secretsBundle: 'no-such-bundle' },
      ],
    }).init();
    for (const args of [
      ['secrets', 'init'],
      ['secrets', 'set-env', '--bundle', 'job-secrets', '--name', 'API_KEY', '--value', apiKey],
      ['secrets', 'set-git', '--bundle', 'job-secrets', '--username', 'robot', '--token', gitToken],
    ]) {
      const result = await stack.cli(args);
      expect({ args, code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    }
    const projectRoot = join(stack.home, 'git-http');
    await execa('git', [
      'clone',
      '--quiet',
      '--bare',
      await createExampleRepo(stack.home),
      join(projectRoot, 'app.git'),
    ]);
    git = new GitHttpServer(projectRoot, { username: 'robot', password: gitToken });
    await git.start();
    await stack.startWorker();
  });
  afterAll(async () => {
    await git?.stop();
    await stack?.close();
  });

  test('the agent sees the env secret and the git token; history, logs and files never hold them', async () => {
    // The agent proves it saw both values (their hashes land in its patch) and prints both (redacted).
    const agent = [
      'printf "key=%s\\n" "$API_KEY"',
      'printf "token=%s\\n" "$("$GIT_ASKPASS" "Password for the remote: ")"',
      'printf "%s" "$API_KEY" | sha256sum | cut -c1-64 > seen-key.txt',
      '"$GIT_ASKPASS" Password | tr -d "\\n" | sha256sum | cut -c1-64 > seen-token.txt',
    ].join('\n');
    const run = stack.cli(
      [
        ...['job', 'run', '--profile', 'with-secrets', '--id', 'job-secrets-e2e', '--json'],
        ...['--repo', git.url('app.git'), '--task', 'use the credentials', '--agent-command', agent],
      ],
      { timeoutMs: 120_000 },
    );
    // The one-time token, read off the sandbox's cloud-init data before the runner claims it.
    const bootstrapToken = await eventually('the bootstrap data', async () => {
      const root = join(stack.dataDir, 'sandboxes');
      for (const vmid of existsSync(root) ? readdirSync(root).filter((e) => /^\d+$/.test(e)) : []) {
        const file = join(root, vmid, 'cloud-init', 'bootstrap.json');
        if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { token: string }).token;
      }
      return undefined;
    });

    const result = await run;
    expect(result.stderr).not.toContain(apiKey);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { status: string; sandbox: { vmid: number; state: string } };
    expect(doc.status).toBe('COMPLETED');
    expect(git.refused).toBeGreaterThan(0); // git asked without credentials first...
    expect(git.served).toBeGreaterThan(0); // ...and came back with the token from the askpass

    // The agent saw them.
    const diff = await stack.cli(['job', 'diff', 'job-secrets-e2e']);
    expect(diff.stdout).toContain(`+${sha256(apiKey)}`);
    expect(diff.stdout).toContain(`+${sha256(gitToken)}`);
    // The job's log shows where they were printed, redacted.
    const logs = await stack.cli(['job', 'logs', 'job-secrets-e2e']);
    expect(logs.stdout).toBe('key=[REDACTED]\ntoken=[REDACTED]\n');

    // Nothing on the worker host's data dir holds a value: job files, the sandbox's state and its
    // console (the runner's own log), the spent claim. The bootstrap snippet is gone.
    const sandboxDir = join(stack.dataDir, 'sandboxes', String(doc.sandbox.vmid));
    expect(existsSync(join(sandboxDir, 'console.log'))).toBe(true);
    expect(existsSync(join(sandboxDir, 'cloud-init', 'bootstrap.json'))).toBe(false);
    const files = allFilesText(stack.dataDir);
    expect(files).toContain('key=[REDACTED]');
    const destroyed = await stack.cli(['sandbox', 'destroy', 'job-secrets-e2e', '--yes']);
    expect(destroyed.code).toBe(0);

    // Every history of this test run (this file's and every earlier suite's), payloads decoded.
    const histories = await dumpAllHistories();
    expect(histories.count).toBeGreaterThan(0);
    expect(histories.text).toContain('job-secrets-e2e');
    expect(histories.text).toContain(sha256(bootstrapToken)); // the dump is real: the hash is there
    for (const [name, text] of Object.entries({ histories: histories.text, files, worker: stack.workerLog })) {
      for (const [secret, value] of Object.entries({ apiKey, gitToken, bootstrapToken })) {
        expect({ where: name, secret, found: text.includes(value) }).toEqual({ where: name, secret, found: false });
      }
    }
  });

  test('a profile whose bundle cannot be decrypted fails before any VM exists, naming the bundle', async () => {
    const result = await stack.cli([
      ...['job', 'run', '--profile', 'missing-bundle', '--id', 'job-no-bundle'],
      ...['--repo', git.url('app.git'), '--task', 'x', '--agent-command', 'true'],
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(/bundle "no-such-bundle" does not exist/);
    const d = await stack.describe('job-no-bundle');
    expect(d.vmid).toBeUndefined();
    // doctor tells the operator the same, per profile, before any job runs.
    const doctor = JSON.parse((await stack.cli(['doctor', '--json'])).stdout) as {
      checks: { name: string; status: string; detail: string }[];
    };
    const bundles = doctor.checks.filter((c) => c.name.startsWith('bundle '));
    expect(bundles).toEqual([
      { name: 'bundle job-secrets (profile with-secrets)', status: 'ok', detail: '1 env value(s), git credentials' },
      expect.objectContaining({ name: 'bundle no-such-bundle (profile missing-bundle)', status: 'fail' }),
    ]);
  });
});
