// What the whole-stack benchmarks (bench-jobs, bench-leases) share: a client of their own dev server, a worker
// in a CPU group of its own, its memory from /proc, and percentiles.
import { type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { WORKFLOW_TASK_QUEUE, type JobRequest } from '../common/contract';
import { jobStartOptions } from '../common/job-start';
import { packageRoot } from '../common/paths';
import { eventually } from '../test/support/stack';
import type { CpuGroup } from './bench-cgroup';

export const percentile = (values: number[], p: number) =>
  values.length === 0
    ? NaN
    : [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

/** A field of /proc/<pid>/status in MB: VmRSS now, VmHWM the peak so far. */
export const statusMb = (pid: number, field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

export async function connectClient(address: string): Promise<Client> {
  return eventually(
    'the Temporal dev server',
    async () => new Client({ connection: await Connection.connect({ address, connectTimeout: '1s' }) }),
    60_000,
  );
}

/**
 * The worker on `configPath`, in `cpu` (so the CPU of everything it starts counts); only warnings logged.
 * BENCH_WORKER_NODE_ARGS adds Node flags, e.g. `--cpu-prof --cpu-prof-dir=DIR` (not allowed in NODE_OPTIONS).
 */
export function spawnWorker(cpu: CpuGroup, configPath: string): ChildProcess {
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return cpu.spawn(process.execPath, [...nodeArgs, join(packageRoot(), 'dist', 'worker', 'main.js')], {
    env: { ...process.env, AGENTLAB_CONFIG: configPath, AGENTLAB_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** SIGTERM, then waits for the exit. */
export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
}

/** What `agentlab job run` / `sandbox new` start, from this process's client (no CLI process per job). */
export async function startJob(client: Client, request: JobRequest): Promise<void> {
  await client.workflow.start('jobWorkflow', jobStartOptions(request, WORKFLOW_TASK_QUEUE));
}

/**
 * `worker.admission` for benchmarks that measure orchestration, not the line: room for any N they start.
 * (With the machine's defaults a 2-core host admits a handful of sandboxes and the rest wait their turn.)
 */
export const ADMIT_ALL = { cores: 65_536, memoryMb: 64 * 1024 * 1024, cpuOvercommit: 1 };
