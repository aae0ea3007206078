// Benchmark of the local backend: sandbox create→ready and destroy times, and how many sandboxes it
// sustains at once. Run by `npm run bench` inside a network namespace of its own (bench/bench.sh).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalBackend } from '../backends/local/backend';
import { LocalNetwork } from '../backends/local/network';
import { mintBootstrap } from '../common/bootstrap';
import type { Owner, ResolvedProfile } from '../common/contract';

const profile: ResolvedProfile = {
  name: 'bench',
  backend: 'local',
  node: 'bench',
  ttlMs: 600_000,
  maxTtlMs: 600_000,
  keepalive: false,
  agentTimeoutMs: 0,
  provisioningAttempts: 1,
  bootTimeoutMs: 30_000,
  bootstrapTimeoutMs: 60_000,
  teardownAttempts: 1,
  cores: 1,
  memoryMb: 512,
};

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const summary = (values: number[]) =>
  `median ${percentile(values, 0.5).toFixed(0)} ms, p90 ${percentile(values, 0.9).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms (n=${values.length})`;

async function createReady(backend: LocalBackend, index: number): Promise<{ vmid: number; owner: Owner; ms: number }> {
  const owner: Owner = { jobId: `bench-${index}`, workflowId: `bench-${index}` };
  const started = performance.now();
  const vmid = await backend.allocate(owner, 1);
  await backend.clone({ vmid, owner }, profile);
  await backend.configure({ vmid, owner }, profile, {
    bootstrap: mintBootstrap({ jobId: owner.jobId, controllerUrl: 'http://10.78.0.1:8844' }, vmid),
  });
  await backend.start({ vmid, owner });
  while (!(await backend.guestAddress({ vmid, owner }))) await sleep(10);
  return { vmid, owner, ms: performance.now() - started };
}

async function destroy(backend: LocalBackend, vmid: number, owner: Owner): Promise<number> {
  const started = performance.now();
  await backend.destroy({ vmid, owner });
  return performance.now() - started;
}

async function run(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-bench-'));
  const vmidRange = { min: 7000, max: 7999 };
  const network = new LocalNetwork({ bridge: 'agentlab0', subnet: '10.78.0.0/22', guestApiPort: 8844 }, vmidRange);
  const backend = new LocalBackend({ dataDir, vmidRange, isolation: 'namespaces', network });
  await backend.prepareHost();

  const rounds = Number(process.env.BENCH_ROUNDS ?? 10);
  const ready: number[] = [];
  const destroyed: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const sandbox = await createReady(backend, i);
    ready.push(sandbox.ms);
    destroyed.push(await destroy(backend, sandbox.vmid, sandbox.owner));
  }
  console.log(`local sandbox create→ready: ${summary(ready)}`);
  console.log(`local sandbox destroy:      ${summary(destroyed)}`);

  // Concurrency: keep adding sandboxes in steps until one fails or the bound is reached.
  const limit = Number(process.env.BENCH_MAX_SANDBOXES ?? 60);
  const step = 10;
  const live: { vmid: number; owner: Owner }[] = [];
  let failure: string | undefined;
  const started = performance.now();
  while (live.length < limit && !failure) {
    const batch = await Promise.allSettled(
      Array.from({ length: step }, (_, i) => createReady(backend, 1000 + live.length + i)),
    );
    for (const result of batch) {
      if (result.status === 'fulfilled') live.push(result.value);
      else failure = (result.reason as Error).message;
    }
  }
  const memory = process.memoryUsage().rss / 1024 / 1024;
  console.log(
    `local sandboxes running at once: ${live.length}${failure ? ` (stopped by: ${failure})` : ` (bound BENCH_MAX_SANDBOXES=${limit} reached)`}` +
      `, all ready after ${((performance.now() - started) / 1000).toFixed(1)} s, bench RSS ${memory.toFixed(0)} MiB`,
  );
  const teardown = performance.now();
  await Promise.all(live.map((s) => backend.destroy({ vmid: s.vmid, owner: s.owner })));
  console.log(`destroyed ${live.length} sandboxes in ${((performance.now() - teardown) / 1000).toFixed(1)} s`);
  rmSync(dataDir, { recursive: true, force: true });
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
