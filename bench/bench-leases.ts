// Leases at scale: N bare sandboxes (what `agentlab sandbox new` starts, from an in-process client) on the
// Proxmox simulator with one worker; half of them renewed through the CLI's renewLease Update, then every
// lease left to expire. Prints the worker's RSS (peak, and while all sandboxes sit leased), the SDK's
// workflow-cache counters, and how late each lease's expiry was (due time → TIMEOUT, from the histories);
// `--json` prints them as one line. Progress goes to stderr.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import YAML from 'yaml';
import { renewLeaseUpdate, SearchAttributes } from '../common/contract';
import { durationSchema } from '../common/schemas';
import { devServerArgs, temporalCliPath } from '../common/temporal-server';
import { PveSim } from '../simulators/proxmox/server';
import { eventually, freePort, sleep } from '../test/support/stack';
import { CpuGroup } from './bench-cgroup';
import { ADMIT_ALL, connectClient, percentile, spawnWorker, startJob, statusMb, stop } from './bench-stack';
import { eventTimeMs } from './job-steps';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Runs `work` over `items`, at most `limit` at a time (a crowd of operators, not one burst). */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Search attribute values in history are plain JSON payloads (never encrypted). */
function searchAttribute(fields: Record<string, { data?: Uint8Array | null }>, name: string): unknown {
  const data = fields[name]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
}

export interface Expiry {
  /** TIMEOUT recorded minus the lease's due time (the last AgentlabLeaseExpiresAt before it). */
  latenessMs: number;
  /** Where that went: the lease timer fired late (the server), the workflow task that followed waited in its
   * queue for the worker (scheduled → started), and the worker ran it (started → completed). */
  timerMs?: number;
  pickupMs?: number;
  runMs?: number;
}

/** The lease's expiry as the history tells it, or undefined if the sandbox never reached TIMEOUT. */
export function leaseExpiry(history: History): Expiry | undefined {
  let dueAt: number | undefined;
  let timerFiredAt: number | undefined;
  let taskScheduledAt: number | undefined;
  let taskStartedAt: number | undefined;
  for (const event of history.events ?? []) {
    if (event.timerFiredEventAttributes) timerFiredAt = eventTimeMs(event);
    if (event.workflowTaskScheduledEventAttributes) taskScheduledAt = eventTimeMs(event);
    if (event.workflowTaskStartedEventAttributes) taskStartedAt = eventTimeMs(event);
    const fields = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    if (!fields) continue;
    const lease = searchAttribute(fields, SearchAttributes.leaseExpiresAt.name);
    if (typeof lease === 'string') dueAt = Date.parse(lease);
    if (searchAttribute(fields, SearchAttributes.state.name) === 'TIMEOUT' && dueAt !== undefined) {
      const at = eventTimeMs(event);
      // The lease timer's, when the task that recorded TIMEOUT followed it (not a destroy or a renew).
      const fromTimer = timerFiredAt !== undefined && taskScheduledAt !== undefined && taskScheduledAt >= timerFiredAt;
      return {
        latenessMs: at - dueAt,
        ...(fromTimer
          ? { timerMs: timerFiredAt! - dueAt, pickupMs: taskStartedAt! - taskScheduledAt!, runMs: at - taskStartedAt! }
          : {}),
      };
    }
  }
  return undefined;
}

/** Sums each `temporal_sticky_cache*` series over its labels (the core runtime's workflow-cache metrics). */
async function cacheMetrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const sums: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^(temporal_sticky_cache\w*?)(?:_total)?(?:\{[^}]*\})? ([\d.e+-]+)$/.exec(line);
    if (match) sums[match[1]!] = (sums[match[1]!] ?? 0) + Number(match[2]);
  }
  return sums;
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '1000' },
      ttl: { type: 'string', default: '6m' },
      'renew-ttl': { type: 'string', default: '2m' },
      json: { type: 'boolean', default: false },
    },
  });
  const n = Number(values.n);
  if (!Number.isInteger(n) || n < 2 || n > 5000) throw new Error('--n: expected 2 to 5000 sandboxes');
  const ttl = durationSchema.safeParse(values.ttl);
  const renewTtl = durationSchema.safeParse(values['renew-ttl']);
  if (!ttl.success || !renewTtl.success) throw new Error('--ttl, --renew-ttl: expected durations such as 30s or 4m');
  const progress = (line: string) => console.error(`bench leases: ${line}`);

  const home = mkdtempSync(join(tmpdir(), 'agentlab-bench-leases-'));
  const snippetsDir = join(home, 'snippets');
  mkdirSync(snippetsDir);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const workerCpu = new CpuGroup(`agentlab-bench-leases-worker-${process.pid}`);
  const serverCpu = new CpuGroup(`agentlab-bench-leases-server-${process.pid}`);
  const server = serverCpu.spawn(temporalCliPath(), devServerArgs({ ip: '127.0.0.1', port, namespace: 'default' }), {
    stdio: 'ignore',
  });
  // The simulator's fast timings (clone 30 ms, boot 100 ms): provisioning is not what this measures.
  const sim = new PveSim({ nodes: ['bench'], snippetsDir, authFailureDelayMs: 10 });
  let worker: ChildProcess | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    await sim.listen();
    sim.addTemplate(9000);
    const guestPort = await freePort();
    const sdkMetricsListen = `127.0.0.1:${await freePort()}`;
    const configPath = join(home, 'config.yaml');
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'bench',
        dataDir: join(home, 'data'),
        temporal: { address, namespace: 'default' },
        vmidRange: { min: 10_000, max: 19_999 },
        worker: {
          admission: ADMIT_ALL,
          backends: ['proxmox'],
          shutdownGraceTime: '5s',
          reconcileInterval: 'off',
          metricsListen: `127.0.0.1:${await freePort()}`,
          sdkMetricsListen,
        },
        guestApi: { listen: `127.0.0.1:${guestPort}` },
        // 8 clones at a time: shortens provisioning, which is not measured here.
        proxmox: { url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret, snippetsDir, cloneConcurrency: 8 },
        profiles: [{ name: 'bench', backend: 'proxmox', templateVmid: 9000, ttl: '1h' }],
      }),
    );
    progress(`Temporal dev server on ${address}, simulator on ${sim.url}`);
    const client = await connectClient(address);
    worker = spawnWorker(workerCpu, configPath);
    const pid = worker.pid!;
    await eventually('the worker', async () => (await fetch(`http://127.0.0.1:${guestPort}/healthz`)).ok, 60_000);
    const rssSamples: { at: number; mb: number }[] = [];
    sampler = setInterval(() => rssSamples.push({ at: Date.now(), mb: statusMb(pid, 'VmRSS') }), 1000);
    const idleRssMb = statusMb(pid, 'VmRSS');
    const [workerBefore, serverBefore] = [workerCpu.seconds(), serverCpu.seconds()];

    progress(`starting ${n} sandboxes (lease ${values.ttl})`);
    const ids = Array.from({ length: n }, (_, i) => `bench-lease-${i}`);
    const started = Date.now();
    await pool(ids, 100, (jobId) => startJob(client, { jobId, profile: 'bench', ttlMs: ttl.data }));
    // Sandboxes only: the host's admission workflow runs for good beside them.
    const count = async (query: string) =>
      (await client.workflow.count(`WorkflowType="jobWorkflow" AND ${query}`)).count;
    let lastLine = '';
    let allRunning = 0;
    // Every second, not faster: the counts are visibility queries the server answers alongside the load.
    while (!allRunning) {
      if (Date.now() - started > ttl.data)
        throw new Error(`not every sandbox was RUNNING before its lease (${lastLine})`);
      await sleep(1000);
      const [running, failed] = [await count('AgentlabState="RUNNING"'), await count('AgentlabState="FAILED"')];
      const line = `${running}/${n} RUNNING${failed ? `, ${failed} FAILED` : ''}`;
      if (line !== lastLine) progress((lastLine = line));
      if (running === n) allRunning = Date.now();
    }
    const runningRssMb = statusMb(pid, 'VmRSS');
    progress(`all RUNNING after ${((allRunning - started) / 1000).toFixed(1)} s; renewing every other lease`);

    const renewStart = Date.now();
    const renewed = ids.filter((_, i) => i % 2 === 1);
    let renewErrors = 0;
    await pool(renewed, 20, async (id) => {
      try {
        await client.workflow.getHandle(id).executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: renewTtl.data }] });
      } catch (err) {
        renewErrors++;
        progress(`renewing ${id}: ${(err as Error).message}`);
      }
    });
    const renewedAt = Date.now();
    progress(`renewed ${renewed.length - renewErrors} leases in ${((renewedAt - allRunning) / 1000).toFixed(1)} s`);
    const cacheWhileLeased = await cacheMetrics(`http://${sdkMetricsListen}/metrics`);

    // Every sandbox now sits leased until the first lease falls due: the steady state.
    const firstDue = Math.min(started + ttl.data, renewStart + renewTtl.data);
    progress(`waiting for the leases to expire (first due in ${Math.round((firstDue - Date.now()) / 1000)} s)`);
    const handles = ids.map((id) => client.workflow.getHandle(id));
    // Counted once a second rather than awaited one by one: 1,000 long polls would load the server measured.
    for (let open = n; open > 0;) {
      await sleep(1000);
      const now = await count('ExecutionStatus="Running"');
      if (Math.ceil(now / (n / 10)) < Math.ceil(open / (n / 10))) progress(`${n - now}/${n} closed`);
      open = now;
    }
    const destroyed = await count('AgentlabState="DESTROYED"');
    clearInterval(sampler);
    const cacheAtEnd = await cacheMetrics(`http://${sdkMetricsListen}/metrics`);
    const peakRssMb = statusMb(pid, 'VmHWM');
    const steady = rssSamples.filter((s) => s.at >= renewedAt && s.at < firstDue).map((s) => s.mb);
    const steadyRssMb = steady.length > 0 ? percentile(steady, 0.5) : runningRssMb;
    const workerCpuSeconds = workerCpu.seconds() - workerBefore;
    const serverCpuSeconds = serverCpu.seconds() - serverBefore;

    progress('reading histories');
    const expiries: Expiry[] = [];
    await pool(handles, 20, async (h) => {
      const expiry = leaseExpiry(await h.fetchHistory());
      if (expiry) expiries.push(expiry);
    });
    const lateness = expiries.map((e) => e.latenessMs);
    const p99Of = (part: 'timerMs' | 'pickupMs' | 'runMs') =>
      Math.round(
        percentile(
          expiries.flatMap((e) => (e[part] === undefined ? [] : [e[part]])),
          0.99,
        ),
      );
    const result = {
      sandboxes: n,
      leased: n,
      renewed: renewed.length - renewErrors,
      expired: expiries.length,
      destroyed,
      errors: n - destroyed + renewErrors,
      workerRssMb: Math.round(steadyRssMb),
      workerRssPeakMb: Math.round(peakRssMb),
      workerRssIdleMb: Math.round(idleRssMb),
      expiryLatenessP50Ms: Math.round(percentile(lateness, 0.5)),
      expiryLatenessP99Ms: Math.round(percentile(lateness, 0.99)),
      expiryLatenessMaxMs: Math.round(Math.max(...lateness)),
      timerLatenessP99Ms: p99Of('timerMs'),
      taskPickupP99Ms: p99Of('pickupMs'),
      taskRunP99Ms: p99Of('runMs'),
      // Core registers a counter's series at its first increment: absent means none yet.
      stickyCacheHits: cacheAtEnd.temporal_sticky_cache_hit ?? 0,
      stickyCacheMisses: cacheAtEnd.temporal_sticky_cache_miss ?? 0,
      stickyCacheSizeLeased: cacheWhileLeased.temporal_sticky_cache_size ?? 0,
      stickyCacheForcedEvictions: cacheAtEnd.temporal_sticky_cache_total_forced_eviction ?? 0,
      provisionSeconds: Number(((allRunning - started) / 1000).toFixed(1)),
      totalSeconds: Number(((Date.now() - started) / 1000).toFixed(1)),
      workerCpuSeconds: Number(workerCpuSeconds.toFixed(1)),
      serverCpuSeconds: Number(serverCpuSeconds.toFixed(1)),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `leases (Proxmox simulator, lease ${values.ttl}, every other one renewed for ${values['renew-ttl']}): ` +
          `${n} sandboxes leased, ${result.renewed} renewed, ${result.expired} expired, ${destroyed} DESTROYED ` +
          `in ${result.totalSeconds} s (all RUNNING after ${result.provisionSeconds} s)`,
      );
      console.log(
        `  worker RSS: ${result.workerRssMb} MB with all ${n} leased (idle ${result.workerRssIdleMb} MB, ` +
          `peak ${result.workerRssPeakMb} MB); CPU: worker ${result.workerCpuSeconds} s, server ${result.serverCpuSeconds} s`,
      );
      console.log(
        `  lease expiry late by: p50 ${result.expiryLatenessP50Ms} ms, p99 ${result.expiryLatenessP99Ms} ms, ` +
          `max ${result.expiryLatenessMaxMs} ms; p99 of its parts: timer fired late ${result.timerLatenessP99Ms} ms, ` +
          `task waited for the worker ${result.taskPickupP99Ms} ms, worker ran it ${result.taskRunP99Ms} ms`,
      );
      console.log(
        `  workflow cache: ${result.stickyCacheHits} hits, ${result.stickyCacheMisses} misses, ` +
          `${result.stickyCacheSizeLeased} cached while leased, ${result.stickyCacheForcedEvictions} forced evictions`,
      );
    }
    await client.connection.close();
  } finally {
    if (sampler) clearInterval(sampler);
    await stop(worker);
    await sim.close();
    await stop(server);
    workerCpu.remove();
    serverCpu.remove();
    if (!process.env.BENCH_KEEP) rmSync(home, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
