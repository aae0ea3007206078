// The core scenarios against a real multi-service Temporal cluster on PostgreSQL (`npm run test:cluster`): what
// the main suite proves on the single-process dev server, on the Temporal that production runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import execa from 'execa';
import { createExampleRepo } from '../../common/example-repo';
import { packageRoot } from '../../common/paths';
import { temporalCliPath } from '../../common/temporal-server';
import {
  SCRIPTED_AGENT,
  TestStack,
  eventually,
  journal,
  liveSandboxes,
  sleep,
  temporalAddress,
} from '../support/stack';
import { ClusterNetwork } from './network';

const sleepyAgent = (seconds: number) => `SCRIPTED_AGENT_SLEEP=${seconds} ${SCRIPTED_AGENT}`;

describe('on a Temporal cluster with PostgreSQL', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    // Emulated VM latencies give the crash a window to land in.
    stack = await new TestStack({ local: { cloneDelay: '2s', bootDelay: '1s' } }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  const runDetached = async (id: string, agentCommand: string, extra: string[] = []) => {
    const result = await stack.cli(
      ['job', 'run', '--repo', repo, '--task', `cluster ${id}`, '--id', id, '--detach'].concat(
        ['--agent-command', agentCommand],
        extra,
      ),
    );
    expect(result).toMatchObject({ code: 0 });
  };

  test('a job runs to COMPLETED and hands back its patch', async () => {
    const result = await stack.cli(
      ['job', 'run', '--repo', repo, '--task', 'change something', '--id', 'cl-complete', '--json'].concat([
        '--agent-command',
        SCRIPTED_AGENT,
      ]),
    );
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ status: 'COMPLETED', sandbox: { state: 'DESTROYED' } });
    const patch = readFileSync(join(stack.dataDir, 'jobs', 'cl-complete', 'artifacts', 'changes.patch'), 'utf8');
    expect(patch).toContain('NOTES.md');
    expect(journal(stack, 'cl-complete').map((e) => e.op)).toEqual(['clone', 'destroy']);
    // Our search attributes, registered on the cluster, are written to and queried from PostgreSQL's visibility.
    const listed = await eventually('the job in the visibility store', async () => {
      const { stdout } = await execa(temporalCliPath(), [
        ...['workflow', 'list', '--address', temporalAddress(), '--output', 'json'],
        ...['--query', `AgentlabState="DESTROYED" AND AgentlabJobStatus="COMPLETED" AND WorkflowId="cl-complete"`],
      ]);
      const rows = JSON.parse(stdout || '[]') as unknown[];
      return rows.length === 1 ? rows : undefined;
    });
    expect(JSON.stringify(listed)).toContain('AgentlabVmid');
  });

  test('lease expiry while the agent runs gives TIMEOUT, teardown, and exit code 4', async () => {
    const result = await stack.cli(
      ['job', 'run', '--repo', repo, '--task', 'too long', '--id', 'cl-expiry', '--ttl', '5s', '--json'].concat([
        '--agent-command',
        sleepyAgent(120),
      ]),
    );
    expect(result.code).toBe(4);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'TIMEOUT', sandbox: { state: 'DESTROYED' } });
  });

  test('renew by Update (the CLI) and by Signal (temporal workflow signal) both extend the lease', async () => {
    await runDetached('cl-renew', sleepyAgent(120), ['--ttl', '8s']);
    const running = await stack.waitForState('cl-renew', (d) => d.state === 'RUNNING', 'RUNNING');
    const renew = await stack.cli(['sandbox', 'lease', 'renew', String(running.vmid), '--ttl', '10m', '--json']);
    expect(renew.code).toBe(0);
    const byUpdate = Date.parse(JSON.parse(renew.stdout).leaseExpiresAt);
    expect(byUpdate).toBeGreaterThan(running.leaseExpiresAt! + 60_000);

    await execa(temporalCliPath(), [
      ...['workflow', 'signal', '--address', temporalAddress(), '--workflow-id', 'cl-renew'],
      ...['--name', 'renewLease', '--input', '{"ttl":"2h"}'],
    ]);
    const bySignal = await stack.waitForState(
      'cl-renew',
      (d) => d.leaseExpiresAt! > byUpdate + 60 * 60_000,
      'the signal to renew the lease to 2 h',
    );
    expect(bySignal.state).toBe('RUNNING');
    const destroy = await stack.cli(['sandbox', 'destroy', String(running.vmid), '--yes']);
    expect(destroy.code).toBe(0);
    await stack.waitForClose('cl-renew');
    expect(await stack.describe('cl-renew')).toMatchObject({ state: 'DESTROYED', jobStatus: 'CANCELLED' });
  });

  test('the worker SIGKILLed mid-job: after a restart the job completes with exactly one VM', async () => {
    await runDetached('cl-crash', sleepyAgent(4));
    await stack.waitForState('cl-crash', (d) => d.state === 'RUNNING', 'RUNNING');
    await stack.killWorkers('SIGKILL');
    await sleep(1500);
    await stack.startWorker();
    await stack.waitForClose('cl-crash', 120_000);
    expect(await stack.describe('cl-crash')).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    const ops = journal(stack, 'cl-crash').map((e) => e.op);
    expect(ops).toEqual(['clone', 'destroy']);
    expect(liveSandboxes(stack)).toEqual([]);
  });

  test('throughput: 20 jobs at once all complete (jobs/min against PostgreSQL recorded)', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `cl-batch-${i}`);
    const started = Date.now();
    await Promise.all(ids.map((id) => runDetached(id, SCRIPTED_AGENT)));
    for (const id of ids) await stack.waitForClose(id, 180_000);
    const seconds = (Date.now() - started) / 1000;
    const statuses = await Promise.all(ids.map(async (id) => (await stack.describe(id)).jobStatus));
    expect(statuses).toEqual(ids.map(() => 'COMPLETED'));
    const figures = { jobs: ids.length, seconds, jobsPerMinute: Math.round((ids.length / seconds) * 60) };
    console.log(`cluster throughput: ${JSON.stringify(figures)}`);
    writeFileSync(join(packageRoot(), 'test-artifacts', 'cluster-throughput.json'), JSON.stringify(figures));
  });
});

describe('two worker hosts in two network namespaces, one cluster', () => {
  const network = ClusterNetwork.attach();
  const hosts: TestStack[] = [];
  let repo: string;

  beforeAll(async () => {
    for (const index of [1, 2]) {
      const netns = await network.addHost(index);
      // One deployment: the second host shares the first's workflow task queue.
      const host = await new TestStack({ node: `cluster-host-${index}`, netns, taskQueue: hosts[0]?.taskQueue }).init();
      hosts.push(host);
      await host.startWorker();
    }
    repo = await createExampleRepo(hosts[0]!.home);
  });
  afterAll(async () => {
    for (const host of hosts) await host.close();
    await network.destroyHosts();
  });

  test('a job routed to each host runs there, reaching Temporal over the bridge only', async () => {
    const results = await Promise.all(
      hosts.map((host, i) =>
        host.cli(
          ['job', 'run', '--repo', repo, '--task', `on host ${i + 1}`, '--id', `cl-host-${i + 1}`, '--json'].concat([
            '--node',
            host.node,
            '--agent-command',
            SCRIPTED_AGENT,
          ]),
        ),
      ),
    );
    hosts.forEach((host, i) => {
      expect(results[i]!.code).toBe(0);
      expect(JSON.parse(results[i]!.stdout)).toMatchObject({ status: 'COMPLETED', sandbox: { node: host.node } });
      expect(journal(host, `cl-host-${i + 1}`).map((e) => e.op)).toEqual(['clone', 'destroy']);
      expect(journal(host, `cl-host-${2 - i}`)).toEqual([]);
    });
    // The hosts' only way out is the bridge: the loopback Temporal a worker might have fallen back to is not there.
    const probe = await execa('nsenter', [`--net=/var/run/netns/${network.hostName(1)}`, 'ip', '-4', 'route'], {
      reject: false,
    });
    expect(probe.stdout.trim().split('\n')).toEqual([expect.stringContaining(`dev eth0`)]);
  });
});

describe('Temporal services SIGKILLed mid-job', () => {
  let stack: TestStack;
  let repo: string;
  const restarted: ChildProcess[] = [];

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(async () => {
    await stack.close();
    // The global teardown stops the processes it started; these are this test's.
    for (const child of restarted) child.kill('SIGTERM');
  });

  test('history and matching killed and restarted while jobs run: every job completes, one VM each', async () => {
    const ids = ['cl-svc-0', 'cl-svc-1', 'cl-svc-2'];
    for (const id of ids) {
      const started = await stack.cli(
        ['job', 'run', '--repo', repo, '--task', id, '--id', id, '--detach'].concat([
          '--agent-command',
          sleepyAgent(8),
        ]),
      );
      expect(started).toMatchObject({ code: 0 });
    }
    for (const id of ids) await stack.waitForState(id, (d) => d.state === 'RUNNING', 'RUNNING');
    for (const service of ['history', 'matching']) {
      const { pid, argv } = serviceProcess(service);
      process.kill(pid, 'SIGKILL');
      await eventually(`${service} to die`, async () => !existsSync(`/proc/${pid}`));
      // Started again as its supervisor would: same command line, same log.
      const log = openSync(join(dirname(argv[argv.indexOf('--config-file') + 1]!), `temporal-${service}.log`), 'a');
      restarted.push(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log, log] }));
    }
    for (const id of ids) await stack.waitForClose(id, 180_000);
    for (const id of ids) {
      expect(await stack.describe(id)).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
      expect(journal(stack, id).map((e) => e.op)).toEqual(['clone', 'destroy']);
    }
  });
});

/** The cluster's process for one service, found by its command line (the global setup started it). */
function serviceProcess(service: string): { pid: number; argv: string[] } {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // exited meanwhile
    }
    const ours = argv.some((arg) => arg.endsWith('temporal-server'));
    if (ours && argv.includes('start') && argv[argv.indexOf('--service') + 1] === service) {
      const configFile = argv[argv.indexOf('--config-file') + 1] ?? '';
      if (configFile.startsWith(tmpdir())) return { pid: Number(entry), argv };
    }
  }
  throw new Error(`no temporal-server process for the ${service} service`);
}
