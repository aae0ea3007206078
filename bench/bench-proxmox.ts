// Benchmark of the Proxmox code path: N jobs through a worker against the simulator with realistic delays,
// printing jobs/minute and per-step latencies from the workflows' histories. Run by `npm run bench`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import YAML from 'yaml';
import { describeQuery } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { agentRunnerPath, packageRoot } from '../common/paths';
import { devServerArgs, temporalCliPath } from '../common/temporal-server';
import { serveRepo } from '../test/support/git-daemon';
import { PveSim } from '../simulators/proxmox/server';
import { REALISTIC_LATENCIES } from '../simulators/proxmox/state';
import { eventually, freePort } from '../test/support/stack';
import { ADMIT_ALL } from './bench-stack';
import { jobSteps, STEPS, type Step } from './job-steps';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const JOBS = env('BENCH_PVE_JOBS', 20);
/** Realistic timings; the storage lock covers only each storage type's volume steps (storage-locks.json). */
const LATENCY = {
  storageSteps: REALISTIC_LATENCIES.storageSteps,
  linkLocalMs: env('BENCH_PVE_LINK_LOCAL_MS', 0),
  linkedCloneMs: env('BENCH_PVE_CLONE_MS', 2000),
  startMs: env('BENCH_PVE_START_MS', 3000),
  bootMs: env('BENCH_PVE_BOOT_MS', 20_000),
  stopMs: env('BENCH_PVE_STOP_MS', 1000),
  destroyMs: env('BENCH_PVE_DESTROY_MS', 1500),
  agentPingTimeoutMs: 3000,
};
const ROOT = packageRoot();
const SCRIPTED_AGENT = join(ROOT, 'examples', 'agents', 'scripted-agent.sh');

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function node(args: string[], configPath: string, stderr: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  return spawn(process.execPath, args, {
    env: { ...process.env, AGENTLAB_CONFIG: configPath, AGENTLAB_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', stderr],
  });
}

async function run(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'agentlab-bench-pve-'));
  const snippetsDir = join(home, 'snippets');
  mkdirSync(snippetsDir);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const server = spawn(temporalCliPath(), devServerArgs({ ip: '127.0.0.1', port, namespace: 'default' }), {
    stdio: 'ignore',
  });
  const sim = new PveSim({
    nodes: ['bench'],
    snippetsDir,
    latency: LATENCY,
    authFailureDelayMs: 10,
    launchGuestRunner: { runnerPath: agentRunnerPath(), workRoot: join(home, 'guests') },
  });
  let worker: ChildProcess | undefined;
  const repo = await serveRepo(await createExampleRepo(home));
  try {
    await sim.listen();
    sim.addTemplate(9000);
    const guestPort = await freePort();
    const configPath = join(home, 'config.yaml');
    const config = {
      node: 'bench',
      dataDir: join(home, 'data'),
      temporal: { address, namespace: 'default' },
      worker: {
        admission: ADMIT_ALL,
        backends: ['proxmox'],
        shutdownGraceTime: '5s',
        metricsListen: `127.0.0.1:${await freePort()}`,
        sdkMetricsListen: `127.0.0.1:${await freePort()}`,
      },
      guestApi: { listen: `127.0.0.1:${guestPort}` },
      proxmox: { url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, snippetsDir },
      profiles: [
        {
          name: 'yolo-ephemeral',
          backend: 'proxmox',
          templateVmid: 9000,
          provisioning: { attempts: 3, bootTimeout: '5m', bootstrapTimeout: '10m' },
        },
      ],
    };
    writeFileSync(configPath, YAML.stringify(config));
    const client = await eventually(
      'the Temporal dev server',
      async () => new Client({ connection: await Connection.connect({ address, connectTimeout: '1s' }) }),
      60_000,
    );
    worker = node([join(ROOT, 'dist', 'worker', 'main.js')], configPath);
    await eventually('the worker', async () => (await fetch(`http://127.0.0.1:${guestPort}/healthz`)).ok, 60_000);

    const ids = Array.from({ length: JOBS }, (_, i) => `bench-pve-${i}`);
    const started = performance.now();
    await Promise.all(
      ids.map(
        (id) =>
          new Promise<void>((resolve, reject) => {
            const cli = [join(ROOT, 'dist', 'cli', 'main.js'), 'job', 'run', '--profile', 'yolo-ephemeral'];
            const args = [...cli, '--repo', repo.url, '--task', `bench ${id}`, '--agent-command', SCRIPTED_AGENT];
            node([...args, '--id', id, '--detach'], configPath, 'ignore').once('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`job run ${id}: exit ${code}`)),
            );
          }),
      ),
    );
    const handles = ids.map((id) => client.workflow.getHandle(id));
    await Promise.all(handles.map((h) => h.result()));
    const elapsed = performance.now() - started;
    const perStep = new Map<Step, number[]>(STEPS.map((s) => [s, []]));
    for (const handle of handles) {
      for (const [step, ms] of Object.entries(jobSteps(await handle.fetchHistory()))) {
        perStep.get(step as Step)!.push(ms);
      }
    }
    const outcomes = await Promise.all(handles.map((h) => h.query(describeQuery)));
    const completed = outcomes.filter((d) => d.jobStatus === 'COMPLETED' && d.state === 'DESTROYED').length;
    console.log(
      `proxmox jobs (simulated: clone ${seconds(LATENCY.linkedCloneMs)}, start ${seconds(LATENCY.startMs)}, ` +
        `guest ready ${seconds(LATENCY.bootMs)}): ${JOBS} jobs, ${completed} COMPLETED, in ${seconds(elapsed)} ` +
        `= ${((JOBS / elapsed) * 60_000).toFixed(1)} jobs/minute; storage-lock timeouts: ${sim.state.stats.storageLockTimeouts}`,
    );
    const steps = LATENCY.storageSteps.lvmthin;
    console.log(
      `  local-lvm (lvmthin) storage lock held ${seconds(sim.state.stats.storageLockHeldMs)} in all over ${JOBS} ` +
        `clones and destroys (per clone ${seconds(steps.allocImageMs + steps.cloneImageMs)}: cloud-init volume ` +
        `and thin snapshot; per destroy ${seconds(2 * steps.freeImageMs)}: two lvremove)`,
    );
    for (const [step, values] of perStep) {
      if (values.length === 0) continue;
      const line = `median ${seconds(percentile(values, 0.5))}, p90 ${seconds(percentile(values, 0.9))}, max ${seconds(Math.max(...values))}`;
      const label = step === 'bootstrap claim' || step === 'guest ready' ? `${step} (from power-on)` : step;
      console.log(`  ${label.padEnd(32)} ${line}`);
    }
    await client.connection.close();
  } finally {
    worker?.kill('SIGTERM');
    await repo.close();
    await sim.close();
    server.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
