// A CLI on another machine (its own, empty data dir) reads job logs and artifacts through the operator API
// of the worker on the job's node: the same bytes the worker's host reads, and only with the token.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { createExampleRepo } from '../common/example-repo';
import { loadOperatorToken, OperatorTokenError } from '../common/operator-api';
import { freePort, SCRIPTED_AGENT, TestStack } from './support/stack';

const writeToken = (dir: string, name: string, mode = 0o600) => {
  const file = join(dir, name);
  writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode });
  return file;
};

describe('the operator API token file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentlab-operator-'));

  test('must exist, be private and hold one long line', () => {
    expect(() => loadOperatorToken(join(dir, 'absent'))).toThrow(/does not exist; create it with/);
    expect(() => loadOperatorToken(writeToken(dir, 'open', 0o644))).toThrow(/chmod 600/);
    const short = join(dir, 'short');
    writeFileSync(short, 'tooshort\n', { mode: 0o600 });
    expect(() => loadOperatorToken(short)).toThrow(OperatorTokenError);
    expect(loadOperatorToken(writeToken(dir, 'good'))).toHaveLength(44);
  });
});

describe('job logs, artifacts and diff from a CLI on another machine', () => {
  let stack: TestStack;
  let baseUrl = '';
  let tokenFile = '';
  let remoteConfig = '';
  const remote = (args: string[], config = remoteConfig) => stack.cli(args, { env: { AGENTLAB_CONFIG: config } });

  /** The stack's own config, as another machine would have it: no shared data dir, the worker's URL instead. */
  const configElsewhere = (name: string, operatorApi: Record<string, unknown>) => {
    const config = YAML.parse(readFileSync(stack.configPath, 'utf8')) as Record<string, unknown>;
    const path = join(stack.home, name);
    writeFileSync(
      path,
      YAML.stringify({ ...config, dataDir: mkdtempSync(join(tmpdir(), 'agentlab-remote-cli-')), operatorApi }),
    );
    return path;
  };

  beforeAll(async () => {
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const home = mkdtempSync(join(tmpdir(), 'agentlab-operator-'));
    tokenFile = writeToken(home, 'operator.token');
    stack = await new TestStack({
      extraConfig: { operatorApi: { listen: `127.0.0.1:${port}`, tokenFile } },
    }).init();
    await stack.startWorker();
    const repo = await createExampleRepo(stack.home);
    const run = await stack.cli([
      ...['job', 'run', '--id', 'job-remote', '--repo', repo, '--task', 'remote reading'],
      ...['--agent-command', SCRIPTED_AGENT],
    ]);
    expect(run.code).toBe(0);
    remoteConfig = configElsewhere('remote.yaml', { tokenFile, urls: { [stack.node]: baseUrl } });
  });
  afterAll(() => stack.close());

  test('the remote CLI reads exactly what the worker host reads', async () => {
    for (const args of [
      ['job', 'logs', 'job-remote'],
      ['job', 'diff', 'job-remote'],
      ['job', 'artifacts', 'job-remote', '--json'],
    ]) {
      const local = await stack.cli(args);
      const far = await remote(args);
      expect({ args, code: far.code, stdout: far.stdout }).toEqual({ args, code: 0, stdout: local.stdout });
    }
    expect((await remote(['job', 'diff', 'job-remote'])).stdout).toContain('+Agent note: remote reading');
    // --out copies every artifact, byte for byte.
    const out = mkdtempSync(join(tmpdir(), 'agentlab-remote-out-'));
    expect((await remote(['job', 'artifacts', 'job-remote', '--out', out])).code).toBe(0);
    const local = join(stack.dataDir, 'jobs', 'job-remote', 'artifacts');
    for (const name of ['agent.log', 'report.json', 'changes.patch']) {
      expect(readFileSync(join(out, name)).equals(readFileSync(join(local, name)))).toBe(true);
    }
    // Without the operator API the same CLI finds nothing in its own, empty data dir.
    const unrouted = configElsewhere('unrouted.yaml', { tokenFile });
    expect((await remote(['job', 'diff', 'job-remote'], unrouted)).code).toBe(3);
  });

  test('a wrong token, a node without a URL and bad names are clear errors', async () => {
    const wrong = configElsewhere('wrong-token.yaml', {
      tokenFile: writeToken(mkdtempSync(join(tmpdir(), 'agentlab-operator-')), 'other.token'),
      urls: { [stack.node]: baseUrl },
    });
    const refused = await remote(['job', 'logs', 'job-remote'], wrong);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refused the token');

    const elsewhere = configElsewhere('other-node.yaml', { tokenFile, urls: { 'some-other-node': baseUrl } });
    const unrouted = await remote(['job', 'logs', 'job-remote'], elsewhere);
    expect(unrouted.code).toBe(2);
    expect(unrouted.stderr).toContain(`runs on node ${stack.node}, which has no operatorApi.urls entry`);

    const token = loadOperatorToken(tokenFile);
    const get = (path: string, auth = `Bearer ${token}`) =>
      fetch(`${baseUrl}${path}`, { headers: { authorization: auth } });
    expect((await get('/v1/jobs/job-remote/artifacts', '')).status).toBe(401);
    expect((await get('/v1/jobs/job-remote/artifacts', 'Bearer nope')).status).toBe(401);
    expect((await get('/v1/jobs/..%2Fetc/artifacts')).status).toBe(400);
    expect((await get('/v1/jobs/job-%zz/artifacts')).status).toBe(400);
    // Only names in the job's artifact index are ever opened.
    expect((await get('/v1/jobs/job-remote/artifacts/..%2F..%2Fconfig.yaml')).status).toBe(404);
    expect((await get('/v1/jobs/job-remote/artifacts/index.json')).status).toBe(404);
    expect((await get('/v1/jobs/job-remote/log?offset=-1')).status).toBe(400);
    const tail = await get('/v1/jobs/job-remote/log?offset=3');
    const log = readFileSync(join(stack.dataDir, 'jobs', 'job-remote', 'agent.log'));
    expect(Buffer.from(await tail.arrayBuffer()).equals(log.subarray(3))).toBe(true);
    expect((await remote(['job', 'artifacts', 'job-remote', '--json'])).code).toBe(0);
  });

  test('an index entry that is not a plain artifact name is never served nor written', async () => {
    // As if the index had been tampered with: a traversal, the index itself, garbage.
    const index = join(stack.dataDir, 'jobs', 'job-remote', 'artifacts', 'index.json');
    const original = readFileSync(index, 'utf8');
    const entries = JSON.parse(original) as Record<string, unknown>;
    const forged = { name: '../../../config.yaml', size: 1, sha256: 'x' };
    writeFileSync(index, JSON.stringify({ ...entries, forged, self: { name: 'index.json' }, junk: 42 }));
    try {
      const out = mkdtempSync(join(tmpdir(), 'agentlab-forged-out-'));
      const listed = await remote(['job', 'artifacts', 'job-remote', '--json', '--out', join(out, 'a')]);
      expect(listed.code).toBe(0);
      const names = (JSON.parse(listed.stdout) as { artifacts: { name: string }[] }).artifacts.map((a) => a.name);
      expect(names.sort()).toEqual(['agent.log', 'changes.patch', 'report.json']);
      expect(existsSync(join(out, 'config.yaml'))).toBe(false);
      const token = loadOperatorToken(tokenFile);
      const get = (path: string) => fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect((await get(`/v1/jobs/job-remote/artifacts/${encodeURIComponent(forged.name)}`)).status).toBe(404);
      const local = await stack.cli(['job', 'artifacts', 'job-remote', '--json']);
      expect(local.stdout).not.toContain('config.yaml');
    } finally {
      writeFileSync(index, original);
    }
  });

  test('a log larger than one reply (4 MiB) arrives whole, in order', async () => {
    // What a chatty agent leaves: 6 MiB more, appended to the log the worker holds.
    const log = join(stack.dataDir, 'jobs', 'job-remote', 'agent.log');
    const line = (i: number) => `line ${String(i).padStart(8, '0')} ${'x'.repeat(48)}\n`;
    appendFileSync(log, Array.from({ length: 6 * 16384 }, (_, i) => line(i)).join(''));
    const far = await remote(['job', 'logs', 'job-remote']);
    expect(far.code).toBe(0);
    expect(Buffer.byteLength(far.stdout)).toBe(statSync(log).size);
    expect(far.stdout === readFileSync(log, 'utf8')).toBe(true);
  });

  test('doctor checks the token file wherever the operator API is configured', async () => {
    const checks = async (config: string) =>
      (
        JSON.parse((await remote(['doctor', '--json'], config)).stdout) as {
          checks: { name: string; status: string }[];
        }
      ).checks;
    expect((await checks(stack.configPath)).find((c) => c.name === 'operator API')).toMatchObject({ status: 'ok' });
    const open = configElsewhere('open-token.yaml', {
      tokenFile: writeToken(mkdtempSync(join(tmpdir(), 'agentlab-operator-')), 'open.token', 0o644),
    });
    expect((await checks(open)).find((c) => c.name === 'operator API')).toMatchObject({ status: 'fail' });
  });
});
