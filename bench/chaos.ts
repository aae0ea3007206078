// A chaos run: N jobs on the Proxmox simulator with injected API faults, while the worker is SIGKILLed and
// restarted at random and the Temporal dev server is SIGKILLed once and restarted on its database. Then it
// checks what must hold whatever failed: every job terminal in the state its history explains, nothing left
// behind, no provisioning attempt cloned twice. Used by `npm run bench -- chaos` and, small, by the test suite.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import YAML from 'yaml';
import { parseOwner } from '../backends/proxmox/marks';
import { describeQuery, type JobDescription } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { agentRunnerPath, packageRoot } from '../common/paths';
import { isTerminalJobStatus } from '../common/states';
import { devServerArgs, temporalCliPath } from '../common/temporal-server';
import { PveSim } from '../simulators/proxmox/server';
import { serveRepo } from '../test/support/git-daemon';
import { eventually, freePort, sleep } from '../test/support/stack';
import { ADMIT_ALL, startJob } from './bench-stack';

const ROOT = packageRoot();
const TEMPLATE_VMID = 9000;
/** Somebody else's VM on the node: chaos or not, it must survive. */
const FOREIGN_VMID = 150;

export interface ChaosOptions {
  jobs: number;
  /** A worker SIGKILL every [min, max] ms, at random, until every job is closed. */
  workerKillEveryMs: [number, number];
  /** When the dev server is SIGKILLed (once), from the first job's start. */
  serverKillAtMs: number;
  /** Share of simulator requests and tasks that fail or stall, spread over the kinds a real node shows. */
  faultRate: number;
  agentSeconds: number;
  /** Simulated boot, clone and start times (ms). */
  latency: { bootMs: number; linkedCloneMs: number; startMs: number };
  /** Give up waiting for jobs to close after this long. */
  timeoutMs: number;
  progress?: (line: string) => void;
}

export interface ChaosResult {
  jobs: number;
  terminal: number;
  completed: number;
  /** Terminal jobs in a state their history does not explain (anything but COMPLETED with its VM destroyed). */
  wrongState: number;
  orphans: number;
  orphansByKind: Record<'vms' | 'snippets' | 'guestRunners' | 'guestDirs' | 'processes', string[]>;
  /** Provisioning attempts (a job and attempt number) that produced more than one finished clone. */
  duplicateClones: number;
  /** Finished clones without a destroy of that VM. */
  undestroyedClones: number;
  /** Jobs whose provisioning was retried (one clone per attempt, each destroyed). */
  retriedProvisioning: number;
  foreignVmIntact: boolean;
  workerKills: number;
  serverRestarts: number;
  /** Requests the simulator answered, and faults it injected into them and their tasks. */
  injected: { requests: number; faults: number };
  elapsedMs: number;
  /** Per job that is not as it should be: its status, state and message. */
  problems: string[];
}

const randomBetween = ([min, max]: [number, number]) => min + Math.random() * (max - min);

/** Processes other than the expected ones whose command line names the run's directory. */
function processesUnder(dir: string, expected: Set<number>): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || expected.has(pid)) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmdline.includes(dir)) found.push(`${pid} ${cmdline.slice(0, 160)}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/** Where an open job stands: its state and its pending activities with their last failure. */
async function stuckAt(client: Client, jobId: string): Promise<string> {
  try {
    const handle = client.workflow.getHandle(jobId);
    const d = await handle.query(describeQuery);
    const { raw } = await handle.describe();
    const pending = (raw.pendingActivities ?? []).map(
      (a) => `${a.activityType?.name} attempt ${a.attempt}: ${a.lastFailure?.message ?? 'no failure'}`,
    );
    return `${d.jobStatus} ${d.state}, pending: ${pending.join('; ') || 'none'}`;
  } catch (err) {
    return `cannot describe: ${(err as Error).message}`;
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const progress = options.progress ?? (() => {});
  const home = mkdtempSync(join(tmpdir(), 'agentlab-chaos-'));
  const snippetsDir = join(home, 'snippets');
  const guestsDir = join(home, 'guests');
  mkdirSync(snippetsDir);
  const node = 'chaos';
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const serverArgs = devServerArgs({
    ip: '127.0.0.1',
    port,
    namespace: 'default',
    dbFilename: join(home, 'temporal.db'),
  });
  const startServer = () => spawn(temporalCliPath(), serverArgs, { stdio: 'ignore' });
  let server = startServer();
  const rate = options.faultRate;
  const sim = new PveSim({
    nodes: [node],
    snippetsDir,
    authFailureDelayMs: 10,
    latency: { ...options.latency, stopMs: 200, destroyMs: 300, agentPingTimeoutMs: 1000 },
    // The kinds a busy node shows: 596 from pveproxy on any request, 500 on a held config lock on a VM's
    // writes (half the rate each), a clone failing on the storage lock, a task that runs 3 s long.
    faults: {
      errorRate: rate / 2,
      configLockContention: rate / 2,
      lockContention: rate,
      slowTaskRate: rate,
      slowTaskMs: 3000,
    },
    launchGuestRunner: { runnerPath: agentRunnerPath(), workRoot: guestsDir },
  });
  await sim.listen();
  sim.addTemplate(TEMPLATE_VMID, { node });
  sim.addVm(FOREIGN_VMID, { description: 'somebody else' }, true, node);
  const repo = await serveRepo(await createExampleRepo(home));
  const guestPort = await freePort();
  const configPath = join(home, 'config.yaml');
  writeFileSync(
    configPath,
    YAML.stringify({
      node,
      dataDir: join(home, 'data'),
      temporal: { address, namespace: 'default' },
      worker: {
        admission: ADMIT_ALL,
        backends: ['proxmox'],
        shutdownGraceTime: '2s',
        reconcileInterval: '30s',
        metricsListen: `127.0.0.1:${await freePort()}`,
        sdkMetricsListen: `127.0.0.1:${await freePort()}`,
      },
      guestApi: { listen: `127.0.0.1:${guestPort}` },
      proxmox: { url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, snippetsDir },
      profiles: [
        {
          name: 'chaos',
          backend: 'proxmox',
          templateVmid: TEMPLATE_VMID,
          ttl: '2h',
          provisioning: { attempts: 5, bootTimeout: '2m', bootstrapTimeout: '5m' },
          teardown: { attempts: 20 },
        },
      ],
    }),
  );
  let worker: ChildProcess | undefined;
  const workerLog: string[] = [];
  const startWorker = () => {
    worker = spawn(process.execPath, [join(ROOT, 'dist', 'worker', 'main.js')], {
      env: { ...process.env, AGENTLAB_CONFIG: configPath, AGENTLAB_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (chunk: Buffer) => workerLog.push(chunk.toString()));
  };
  const killWorker = async () => {
    const dying = worker;
    if (!dying || dying.exitCode !== null || dying.signalCode !== null) return;
    const exited = new Promise((resolve) => dying.once('exit', resolve));
    dying.kill('SIGKILL');
    await exited;
  };

  let client: Client | undefined;
  let stopChaos = false;
  let workerKills = 0;
  let serverRestarts = 0;
  const started = performance.now();
  try {
    client = await eventually(
      'the Temporal dev server',
      async () => new Client({ connection: await Connection.connect({ address, connectTimeout: '1s' }) }),
      60_000,
    );
    startWorker();
    await eventually('the worker', async () => (await fetch(`http://127.0.0.1:${guestPort}/healthz`)).ok, 60_000);
    const ids = Array.from({ length: options.jobs }, (_, i) => `chaos-${i}`);
    for (const jobId of ids) {
      const request = {
        jobId,
        repo: repo.url,
        task: `chaos ${jobId}`,
        profile: 'chaos',
        agentCommand: `SCRIPTED_AGENT_SLEEP=${options.agentSeconds} ${join(ROOT, 'examples', 'agents', 'scripted-agent.sh')}`,
      };
      await startJob(client, request);
    }
    progress(`${options.jobs} jobs started`);

    const killer = (async () => {
      while (!stopChaos) {
        await sleep(randomBetween(options.workerKillEveryMs));
        if (stopChaos) break;
        await killWorker();
        workerKills++;
        progress(`worker SIGKILLed (${workerKills})`);
        await sleep(500 + Math.random() * 1500);
        startWorker();
      }
    })();
    const serverKiller = (async () => {
      await sleep(options.serverKillAtMs);
      if (stopChaos) return;
      const dying = server;
      const exited = new Promise((resolve) => dying.once('exit', resolve));
      dying.kill('SIGKILL');
      await exited;
      progress('Temporal dev server SIGKILLed');
      await sleep(2000);
      server = startServer();
      serverRestarts++;
      progress('Temporal dev server restarted on its database');
    })();

    const open = new Set(ids);
    const final = new Map<string, JobDescription>();
    const deadline = started + options.timeoutMs;
    while (open.size > 0 && performance.now() < deadline) {
      await sleep(2000);
      for (const id of [...open]) {
        try {
          const handle = client.workflow.getHandle(id);
          if ((await handle.describe()).status.name === 'RUNNING') continue;
          final.set(id, await handle.query(describeQuery));
          open.delete(id);
        } catch {
          /* the server is down or restarting: ask again next round */
        }
      }
    }
    stopChaos = true;
    await Promise.all([killer, serverKiller]);
    const elapsedMs = performance.now() - started;
    progress(`${final.size} of ${options.jobs} jobs closed in ${(elapsedMs / 1000).toFixed(0)} s`);

    // The worker that is up now finishes whatever teardown the last kill interrupted, as it would in life.
    if (!worker || worker.exitCode !== null || worker.signalCode !== null) startWorker();
    const leftovers = () => [...sim.state.vms.keys()].filter((id) => id !== TEMPLATE_VMID && id !== FOREIGN_VMID);
    await eventually('no VM left', async () => leftovers().length === 0, 30_000).catch(() => undefined);

    const problems: string[] = [];
    let completed = 0;
    for (const id of ids) {
      const d = final.get(id);
      if (!d) {
        problems.push(`${id}: not closed; ${await stuckAt(client, id)}`);
        continue;
      }
      if (d.jobStatus === 'COMPLETED' && d.state === 'DESTROYED' && d.exitCode === 0) completed++;
      else problems.push(`${id}: ${d.jobStatus} ${d.state} ${d.message ?? ''}`.trim());
    }
    const terminal = [...final.values()].filter((d) => isTerminalJobStatus(d.jobStatus)).length;

    const clones = new Map<string, number[]>();
    const jobsCloned = new Map<string, Set<number>>();
    for (const entry of sim.state.ledger) {
      const owner = parseOwner(entry.description);
      if (entry.op !== 'clone' || !owner) continue;
      const key = `${owner.workflowId}#${owner.attempt}`;
      clones.set(key, [...(clones.get(key) ?? []), entry.vmid]);
      jobsCloned.set(owner.workflowId, (jobsCloned.get(owner.workflowId) ?? new Set()).add(owner.attempt));
    }
    const destroyed = new Set(sim.state.ledger.filter((e) => e.op === 'destroy').map((e) => e.vmid));
    const duplicateClones = [...clones.values()].filter((vmids) => vmids.length > 1).length;
    const undestroyedClones = [...clones.values()].flat().filter((vmid) => !destroyed.has(vmid)).length;
    const retriedProvisioning = [...jobsCloned.values()].filter((attempts) => attempts.size > 1).length;
    for (const [key, vmids] of clones) if (vmids.length > 1) problems.push(`${key}: cloned ${vmids.join(', ')}`);

    const expected = new Set([server.pid, worker?.pid].filter((pid): pid is number => pid !== undefined));
    // The git daemon serving the repository is ours, by design still up.
    for (const line of processesUnder(home, new Set())) {
      if (/git[- ]daemon/.test(line)) expected.add(Number(line.split(' ')[0]));
    }
    const orphansByKind = {
      vms: leftovers().map(String),
      snippets: readdirSync(snippetsDir),
      guestRunners: sim.guests!.running().map(String),
      guestDirs: existsSync(guestsDir) ? readdirSync(guestsDir).filter((name) => name.startsWith('vm-')) : [],
      processes: processesUnder(home, expected),
    };
    const { requests, injectedFaults } = sim.state.stats;
    const result: ChaosResult = {
      jobs: options.jobs,
      terminal,
      completed,
      wrongState: terminal - completed,
      orphans: Object.values(orphansByKind).reduce((sum, list) => sum + list.length, 0),
      orphansByKind,
      duplicateClones,
      undestroyedClones,
      retriedProvisioning,
      foreignVmIntact: sim.state.vms.has(FOREIGN_VMID),
      workerKills,
      serverRestarts,
      injected: { requests, faults: injectedFaults },
      elapsedMs: Math.round(elapsedMs),
      problems,
    };
    if (problems.length > 0 && process.env.AGENTLAB_CHAOS_LOG)
      writeFileSync(process.env.AGENTLAB_CHAOS_LOG, workerLog.join(''));
    return result;
  } finally {
    stopChaos = true;
    await client?.connection.close().catch(() => undefined);
    await killWorker();
    worker?.kill('SIGKILL');
    sim.guests?.killAll();
    await sim.close();
    await repo.close();
    server.kill('SIGTERM');
    await new Promise((resolve) => (server.exitCode === null ? server.once('exit', resolve) : resolve(null)));
    if (!process.env.AGENTLAB_CHAOS_KEEP) rmSync(home, { recursive: true, force: true });
  }
}
