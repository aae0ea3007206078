// Benchmark of `agentlab job list` over 1,000 finished jobs, on a dev server of its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { SearchAttributes } from '../common/contract';
import { packageRoot } from '../common/paths';
import { devServerArgs, temporalCliPath } from '../common/temporal-server';

const JOBS = Number(process.env.BENCH_LIST_JOBS ?? 1000);
const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function connect(address: string): Promise<Client> {
  for (let i = 0; ; i++) {
    try {
      return new Client({ connection: await Connection.connect({ address, connectTimeout: '1s' }) });
    } catch (err) {
      if (i > 60) throw err;
      await sleep(500);
    }
  }
}

function timeCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('exit', (code) =>
      code === 0 ? resolve({ ms: performance.now() - started, stdout }) : reject(new Error(`exit ${code}`)),
    );
  });
}

async function run(): Promise<void> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-bench-list-'));
  const server = spawn(temporalCliPath(), devServerArgs({ ip: '127.0.0.1', port, namespace: 'default' }), {
    stdio: 'ignore',
  });
  try {
    const client = await connect(address);
    const seeded = performance.now();
    // Finished jobs as the visibility store sees them: started with their final attributes, then closed.
    for (let batch = 0; batch < JOBS; batch += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, JOBS - batch) }, async (_, i) => {
          const n = batch + i;
          const handle = await client.workflow.start('jobWorkflow', {
            workflowId: `bench-job-${n}`,
            taskQueue: 'agentlab-bench-no-worker',
            args: [{ jobId: `bench-job-${n}`, profile: 'local' }],
            typedSearchAttributes: [
              { key: SearchAttributes.state, value: 'DESTROYED' },
              { key: SearchAttributes.jobStatus, value: n % 10 === 0 ? 'FAILED' : 'COMPLETED' },
              { key: SearchAttributes.profile, value: 'local' },
              { key: SearchAttributes.vmid, value: 7000 + (n % 1000) },
            ],
            memo: { repo: 'https://git.example.invalid/acme/app.git', task: `benchmark task ${n}` },
          });
          await handle.terminate('benchmark seed');
        }),
      );
    }
    console.log(`seeded ${JOBS} finished jobs in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);
    const env = { ...process.env, TEMPORAL_ADDRESS: address, AGENTLAB_CONFIG: '', XDG_STATE_HOME: dataDir };
    await sleep(1500); // visibility is eventually consistent
    for (const [label, args] of [
      [`job list --limit ${JOBS} --json`, ['job', 'list', '--limit', String(JOBS), '--json']],
      ['job list (default 50, table)', ['job', 'list']],
      ['job list --status FAILED --limit 1000', ['job', 'list', '--status', 'FAILED', '--limit', '1000', '--json']],
    ] as const) {
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < 5; i++) {
        const { ms, stdout } = await timeCli([...args], env);
        times.push(ms);
        rows = (args as readonly string[]).includes('--json')
          ? (JSON.parse(stdout) as { jobs: unknown[] }).jobs.length
          : stdout.trim().split('\n').length - 1;
      }
      times.sort((a, b) => a - b);
      console.log(
        `agentlab ${label}: ${rows} rows, median ${times[2]!.toFixed(0)} ms, max ${times[4]!.toFixed(0)} ms (5 runs, whole CLI process)`,
      );
    }
    await client.connection.close();
  } finally {
    server.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
