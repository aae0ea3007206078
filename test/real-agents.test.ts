// The real agent CLIs (Claude Code, Codex, OpenCode) run jobs in isolated local sandboxes against the
// scripted model API, which sits on an "Internet" host of the test's own network: the sandbox reaches it
// through the bridge and the egress policy, never through loopback. Their keys come from secrets bundles
// and appear in no history, log, report or patch; the failures users meet are reported plainly.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { AGENT_PACKAGES, type AgentKind } from '../common/agents';
import { createExampleRepo } from '../common/example-repo';
import { packageRoot } from '../common/paths';
import { temporalCliPath } from '../common/temporal-server';
import { allFilesText } from './support/files';
import { dumpAllHistories } from './support/histories';
import { OUTSIDE_HOSTS, TestNetwork } from './support/netns';
import { eventually } from './support/stack';

const GATEWAY = '10.78.0.1';
const MODEL_API = `http://${OUTSIDE_HOSTS.internet}:8080`;
const HANGING_API = `http://${OUTSIDE_HOSTS.internet}:8081`;
const MODEL_API_MAIN = join(packageRoot(), 'dist', 'simulators', 'model-api', 'main.js');

describe('real agents in isolated sandboxes, against the scripted model API', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-real-agents-'));
  const dataDir = join(home, 'data');
  const configPath = join(home, 'config.yaml');
  const key = `sk-agentlab-e2e-${randomBytes(16).toString('hex')}`;
  const wrongKey = `sk-agentlab-wrong-${randomBytes(8).toString('hex')}`;
  const env = {
    ...process.env,
    AGENTLAB_CONFIG: configPath,
    AGENTLAB_SECRETS_KEY_FILE: join(home, 'keys', 'age.key'),
    AGENTLAB_SECRETS_DIR: join(home, 'secrets'),
  };
  let repo: string;

  const cli = (args: string[]) => net.cli(env, args, 240_000);
  const run = (profile: string, id: string) =>
    cli([
      ...['job', 'run', '--profile', profile, '--id', id, '--repo', repo, '--json'],
      ...['--task', 'scenario:create-file Please create AGENT_EDIT.md.'],
    ]);
  const profile = (name: string, bundle: string, agent: Record<string, unknown>) => ({
    name,
    backend: 'local',
    secretsBundle: bundle,
    agent: { timeout: '120s', ...agent },
    provisioning: { attempts: 1, bootTimeout: '20s' },
  });

  beforeAll(async () => {
    await net.create();
    repo = await createExampleRepo(join(home, 'repos'));
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'agentshost',
        dataDir,
        temporal: { address: '127.0.0.1:7233' },
        vmidRange: { min: 7200, max: 7299 },
        worker: { reconcileInterval: 'off' },
        local: { isolation: 'namespaces', subnet: '10.78.0.0/24', dns: { upstreams: [OUTSIDE_HOSTS.internet] } },
        profiles: [
          profile('claude', 'anthropic', { kind: 'claude' }),
          profile('codex', 'openai', { kind: 'codex', model: 'gpt-5.5' }),
          profile('opencode', 'openai', { kind: 'opencode', model: 'scripted' }),
          profile('claude-no-key', 'no-key', { kind: 'claude' }),
          // Claude Code retries even a 401 for two minutes unless told not to retry.
          profile('claude-wrong-key', 'wrong-key', { kind: 'claude', maxRetries: 0 }),
          profile('claude-hanging-api', 'hanging-api', { kind: 'claude', timeout: '20s' }),
        ],
      }),
    );
    // The bundles, as an operator makes them (values from files, never on a command line).
    const bundles: Record<string, Record<string, string>> = {
      anthropic: { ANTHROPIC_API_KEY: key, ANTHROPIC_BASE_URL: MODEL_API },
      openai: { OPENAI_API_KEY: key, OPENAI_BASE_URL: `${MODEL_API}/v1` },
      'no-key': { ANTHROPIC_BASE_URL: MODEL_API },
      'wrong-key': { ANTHROPIC_API_KEY: wrongKey, ANTHROPIC_BASE_URL: MODEL_API },
      'hanging-api': { ANTHROPIC_API_KEY: key, ANTHROPIC_BASE_URL: HANGING_API },
    };
    expect((await cli(['secrets', 'init'])).code).toBe(0);
    const valueFile = join(home, 'value');
    for (const [bundle, values] of Object.entries(bundles)) {
      for (const [name, value] of Object.entries(values)) {
        writeFileSync(valueFile, value, { mode: 0o600 });
        const set = await cli(['secrets', 'set-env', '--bundle', bundle, '--name', name, '--value-file', valueFile]);
        expect({ bundle, name, code: set.code, stderr: set.stderr }).toMatchObject({ code: 0 });
      }
    }
    writeFileSync(valueFile, '');

    // The model API on the Internet host: one that answers, one that accepts and never answers.
    const apiEnv = { ...process.env, AGENTLAB_MODEL_API_KEY: key };
    for (const [port, extra] of [
      ['8080', []],
      ['8081', ['--fault', 'hang']],
    ] as const) {
      net.spawnIn(
        net.outside,
        process.execPath,
        [MODEL_API_MAIN, '--port', port, '--listen', OUTSIDE_HOSTS.internet, ...extra],
        apiEnv,
      );
    }
    await net.startHostStack(env, GATEWAY);
    await eventually(
      'the model API on the Internet host',
      async () => (await net.execIn(net.host, 'curl', ['-s', '-o', '/dev/null', `${MODEL_API}/`])).exitCode === 0,
      30_000,
    );
  }, 240_000);

  afterAll(() => net.destroy());

  const report = (jobId: string) =>
    JSON.parse(readFileSync(join(dataDir, 'jobs', jobId, 'artifacts', 'report.json'), 'utf8')) as {
      agent: { kind: string; version: string; usage: { inputTokens: number; outputTokens: number } | null } | null;
    };

  test.each(['claude', 'codex', 'opencode'] as AgentKind[])(
    '%s edits the repository with its own tools and the job completes',
    async (kind) => {
      const jobId = `job-real-${kind}`;
      const result = await run(kind, jobId);
      expect({ code: result.code, stderr: result.stderr.slice(-2000) }).toMatchObject({ code: 0 });
      expect(JSON.parse(result.stdout)).toMatchObject({ status: 'COMPLETED', sandbox: { state: 'DESTROYED' } });
      // Exactly the edit the script asked for, and nothing else.
      const diff = (await cli(['job', 'diff', jobId])).stdout;
      expect(diff.match(/^diff --git .*$/gm)).toEqual(['diff --git a/AGENT_EDIT.md b/AGENT_EDIT.md']);
      expect(diff).toMatch(new RegExp(`^\\+edited by ${kind}$`, 'm'));
      const agent = report(jobId).agent!;
      expect(agent).toMatchObject({ kind, version: expect.stringContaining(AGENT_PACKAGES[kind].version) });
      expect(agent.usage!.outputTokens).toBeGreaterThan(0);
    },
  );

  test('a key the agent needs missing from the bundle: FAILED before any VM, naming the variable and the bundle', async () => {
    const result = await run('claude-no-key', 'job-no-key');
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout) as { status: string; message: string; sandbox: { vmid: number | null } };
    expect(doc.status).toBe('FAILED');
    expect(doc.message).toContain('Claude Code needs ANTHROPIC_API_KEY');
    expect(doc.message).toContain('the secrets bundle "no-key" has none of them');
    expect(doc.sandbox.vmid).toBeNull();
  });

  test("the API refuses the key (401): FAILED with the agent's own message", async () => {
    const result = await run('claude-wrong-key', 'job-wrong-key');
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout) as { status: string; message: string };
    expect(doc.status).toBe('FAILED');
    expect(doc.message).toMatch(/Claude Code says Invalid API key.*\(HTTP 401\)/);
  });

  test('a model API that never answers: the agent is killed at the timeout, TIMEOUT with that reason', async () => {
    const result = await run('claude-hanging-api', 'job-hanging-api');
    expect(result.code).toBe(4);
    const doc = JSON.parse(result.stdout) as { status: string; message: string; sandbox: { state: string } };
    expect(doc).toMatchObject({ status: 'TIMEOUT', sandbox: { state: 'DESTROYED' } });
    expect(doc.message).toContain('agent timed out after 20s');
  });

  test('the key is in no history, log, report or patch, and nothing of any sandbox is left', async () => {
    const temporal = async (args: string[]) =>
      (await net.execIn(net.host, temporalCliPath(), [...args, '--address', '127.0.0.1:7233'])).stdout;
    const histories = await dumpAllHistories(temporal);
    expect(histories.text).toContain('job-real-claude'); // the dump is real
    const files = allFilesText(dataDir);
    expect(files).toContain('edited by codex'); // and so is this
    for (const [where, text] of Object.entries({ histories: histories.text, files })) {
      for (const [name, value] of Object.entries({ key, wrongKey })) {
        expect({ where, name, found: text.includes(value) }).toEqual({ where, name, found: false });
      }
    }
    // Nothing left behind: no sandbox dir, netns, veth, process, mount or cgroup.
    const sandboxes = join(dataDir, 'sandboxes');
    const left = existsSync(sandboxes) ? readdirSync(sandboxes).filter((e) => /^\d+$/.test(e)) : [];
    expect(left).toEqual([]);
    // Named network namespaces are the machine's, not the test network's: only this suite's VMIDs count.
    expect((await net.execIn(net.host, 'ip', ['netns', 'list'])).stdout).not.toMatch(/agentlab-72\d\d\b/);
    expect((await net.execIn(net.host, 'ip', ['link', 'show'])).stdout).not.toMatch(/alv\d+/);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(join(dataDir, 'sandboxes'));
    expect((await net.execIn(net.host, 'pgrep', ['-f', join(dataDir, 'sandboxes')])).stdout).toBe('');
    const cgroups = existsSync('/sys/fs/cgroup/agentlab') ? readdirSync('/sys/fs/cgroup/agentlab') : [];
    expect(cgroups.filter((g) => /^sandbox-72\d\d$/.test(g))).toEqual([]);
  });
});
