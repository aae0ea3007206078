// Whole jobs through Temporal at scale: N jobs started at once (an in-process client, no CLI process per
// job) on one worker with the local backend and isolation on. Prints jobs/minute, per-job wall time, the
// orchestration overhead per job (wall minus backend activity time minus agent time, from the histories
// and reports), CPU-seconds per job over every process involved, the worker's peak RSS, history events per
// job and errors; `--json` prints them as one line. Run inside a network namespace (bench/bench.sh jobs).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import execa from 'execa';
import YAML from 'yaml';
import { createExampleRepo } from '../common/example-repo';
import { devServerArgs, temporalCliPath } from '../common/temporal-server';
import { eventually, freePort } from '../test/support/stack';
import { CpuGroup } from './bench-cgroup';
import { ADMIT_ALL, connectClient, percentile, spawnWorker, startJob, statusMb, stop } from './bench-stack';
import { jobTimes, type JobTimes } from './job-times';

/** The worker process's own CPU (utime + stime, fields 14 and 15 of /proc/<pid>/stat; USER_HZ is 100). */
function workerSelfSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '50' },
      'agent-seconds': { type: 'string', default: '5' },
      // `all` admits every job at once; `host` lets the worker admit by this machine's capacity (the default
      // configuration), each sandbox declaring `--sandbox-cores` and `--sandbox-memory-mb`.
      admission: { type: 'string', default: 'all' },
      'sandbox-cores': { type: 'string', default: '1' },
      'sandbox-memory-mb': { type: 'string', default: '512' },
      json: { type: 'boolean', default: false },
    },
  });
  const jobs = Number(values.n);
  const agentSeconds = Number(values['agent-seconds']);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 900) throw new Error('--n: expected 1 to 900 jobs');
  if (values.admission !== 'all' && values.admission !== 'host') throw new Error('--admission: expected all or host');
  const byHost = values.admission === 'host';
  const resources = { cores: Number(values['sandbox-cores']), memoryMb: Number(values['sandbox-memory-mb']) };
  if (!Number.isInteger(resources.cores) || resources.cores < 1)
    throw new Error('--sandbox-cores: expected a whole number ≥ 1');
  if (!Number.isInteger(resources.memoryMb) || resources.memoryMb < 1)
    throw new Error('--sandbox-memory-mb: expected a whole number ≥ 1');
  const home = mkdtempSync(join(tmpdir(), 'agentlab-bench-jobs-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // Each in a CPU group of its own: the worker's counts every sandbox process it ever started.
  const workerCpu = new CpuGroup(`agentlab-bench-worker-${process.pid}`);
  const serverCpu = new CpuGroup(`agentlab-bench-server-${process.pid}`);
  const server = serverCpu.spawn(temporalCliPath(), devServerArgs({ ip: '127.0.0.1', port, namespace: 'default' }), {
    stdio: 'ignore',
  });
  let worker: ChildProcess | undefined;
  try {
    const repo = await createExampleRepo(home);
    const commit = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout;
    const configPath = join(home, 'config.yaml');
    const dataDir = join(home, 'data');
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'benchjobs',
        dataDir,
        temporal: { address },
        vmidRange: { min: 7000, max: 7999 },
        worker: {
          ...(byHost ? {} : { admission: ADMIT_ALL }),
          reconcileInterval: 'off',
          metricsListen: `127.0.0.1:${await freePort()}`,
          sdkMetricsListen: `127.0.0.1:${await freePort()}`,
        },
        local: { isolation: 'namespaces', subnet: '10.78.0.0/22', dns: { enabled: false } },
        profiles: [
          {
            name: 'bench',
            backend: 'local',
            ttl: '2h',
            resources,
            provisioning: { attempts: 3, bootTimeout: '10m', bootstrapTimeout: '20m' },
          },
        ],
      }),
    );
    const progress = (line: string) => console.error(`bench jobs: ${line}`);
    progress(`Temporal dev server on ${address}`);
    const client = await connectClient(address);
    worker = spawnWorker(workerCpu, configPath);
    progress('worker');
    await eventually('the worker', async () => (await fetch('http://10.78.0.1:8844/healthz')).ok, 60_000);
    progress(`starting ${jobs} jobs`);

    const [workerBefore, serverBefore] = [workerCpu.seconds(), serverCpu.seconds()];
    const benchBefore = process.cpuUsage();
    const workerSelfBefore = workerSelfSeconds(worker.pid!);
    const ids = Array.from({ length: jobs }, (_, i) => `bench-job-${i}`);
    const started = performance.now();
    await Promise.all(
      ids.map((jobId) =>
        startJob(client, {
          jobId,
          repo,
          ref: 'HEAD',
          commit,
          task: `bench ${jobId}`,
          profile: 'bench',
          agentCommand: `sleep ${agentSeconds}`,
        }),
      ),
    );
    progress('waiting for them to close');
    const handles = ids.map((id) => client.workflow.getHandle(id));
    const outcomes = await Promise.all(handles.map((h) => h.result().catch((err: Error) => ({ status: err.message }))));
    const elapsedMs = performance.now() - started;
    const benchCpu = process.cpuUsage(benchBefore);
    const rss = statusMb(worker.pid!, 'VmHWM');
    const workerSelf = workerSelfSeconds(worker.pid!) - workerSelfBefore;
    const workerAll = workerCpu.seconds() - workerBefore;
    const clientSeconds = (benchCpu.user + benchCpu.system) / 1e6;
    const serverSeconds = serverCpu.seconds() - serverBefore;
    const cpu = workerAll + serverSeconds + clientSeconds;
    const perJob = (seconds: number) => Number((seconds / jobs).toFixed(3));
    const cpuSplit = {
      worker: perJob(workerSelf),
      sandboxesAndTools: perJob(workerAll - workerSelf),
      server: perJob(serverSeconds),
      client: perJob(clientSeconds),
    };

    // The first job's history, for a closer look at where its time went.
    if (process.env.BENCH_DUMP_HISTORY) {
      writeFileSync(process.env.BENCH_DUMP_HISTORY, JSON.stringify(await handles[0]!.fetchHistory()));
    }
    const times: JobTimes[] = [];
    for (const [i, handle] of handles.entries()) {
      const report = JSON.parse(readFileSync(join(dataDir, 'jobs', ids[i]!, 'artifacts', 'report.json'), 'utf8')) as {
        durationSeconds?: number;
      };
      times.push(jobTimes(await handle.fetchHistory(), (report.durationSeconds ?? 0) * 1000, byHost));
    }
    /** One figure of the jobs' times at percentile `p`, in whole units. */
    const timeAt = (key: keyof JobTimes, p: number) =>
      Math.round(
        percentile(
          times.map((t) => t[key]),
          p,
        ),
      );
    const completed = outcomes.filter((o) => (o as { status: string }).status === 'COMPLETED').length;
    const result = {
      jobs,
      completed,
      errors: jobs - completed,
      jobsPerMinute: Number(((jobs / elapsedMs) * 60_000).toFixed(1)),
      wallP50Ms: timeAt('wallMs', 0.5),
      wallP90Ms: timeAt('wallMs', 0.9),
      wallMaxMs: Math.round(Math.max(...times.map((t) => t.wallMs))),
      overheadP50Ms: timeAt('overheadMs', 0.5),
      overheadP90Ms: timeAt('overheadMs', 0.9),
      queueWaitP50Ms: timeAt('queueWaitMs', 0.5),
      admissionWaitP50Ms: timeAt('admissionWaitMs', 0.5),
      admissionWaitMaxMs: Math.round(Math.max(...times.map((t) => t.admissionWaitMs))),
      backendP50Ms: timeAt('backendMs', 0.5),
      agentP50Ms: timeAt('agentMs', 0.5),
      cpuSecondsPerJob: Number((cpu / jobs).toFixed(3)),
      workerRssPeakMb: Math.round(rss),
      historyEventsPerJob: timeAt('events', 0.5),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `jobs (local backend, isolation, agent "sleep ${agentSeconds}", ` +
          `${byHost ? `admitted by host capacity, ${resources.cores} core / ${resources.memoryMb} MB each` : 'all admitted at once'}): ` +
          `${completed}/${jobs} COMPLETED in ` +
          `${(elapsedMs / 1000).toFixed(1)} s = ${result.jobsPerMinute} jobs/minute`,
      );
      console.log(
        `  per job wall:    p50 ${result.wallP50Ms} ms, p90 ${result.wallP90Ms} ms, max ${result.wallMaxMs} ms`,
      );
      console.log(
        `  orchestration:   p50 ${result.overheadP50Ms} ms, p90 ${result.overheadP90Ms} ms (of which waiting ` +
          `in task queues p50 ${result.queueWaitP50Ms} ms); backend p50 ${result.backendP50Ms} ms; agent p50 ${result.agentP50Ms} ms; ` +
          `${byHost ? 'waiting for capacity' : 'admission round trip (in the overhead)'} p50 ${result.admissionWaitP50Ms} ms, max ${result.admissionWaitMaxMs} ms`,
      );
      console.log(
        `  CPU ${result.cpuSecondsPerJob} s per job (worker ${cpuSplit.worker}, sandboxes and tools ` +
          `${cpuSplit.sandboxesAndTools}, server ${cpuSplit.server}, client ${cpuSplit.client}); ` +
          `worker RSS peak ${result.workerRssPeakMb} MB; ${result.historyEventsPerJob} history events per job`,
      );
    }
    await client.connection.close();
  } finally {
    await stop(worker);
    await stop(server);
    workerCpu.remove();
    serverCpu.remove();
    if (!process.env.BENCH_KEEP) rmSync(home, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
