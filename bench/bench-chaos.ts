// `npm run bench -- chaos [--n 100] [--json]`: the chaos run (bench/chaos.ts) at benchmark size: the worker
// SIGKILLed every 10–30 s, the dev server once, 10% simulator faults. Prints what held and what did not.
import { parseArgs } from 'node:util';
import { runChaos } from './chaos';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '100' },
      'fault-rate': { type: 'string', default: '0.1' },
      json: { type: 'boolean', default: false },
    },
  });
  const jobs = Number(values.n);
  const faultRate = Number(values['fault-rate']);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--n: expected a whole number of jobs ≥ 1, got ${values.n}`);
  if (!(faultRate >= 0 && faultRate < 1))
    throw new Error(`--fault-rate: expected 0 ≤ rate < 1, got ${values['fault-rate']}`);
  const result = await runChaos({
    jobs,
    faultRate,
    workerKillEveryMs: [10_000, 30_000],
    serverKillAtMs: 20_000,
    agentSeconds: 5,
    latency: { linkedCloneMs: 2000, startMs: 1000, bootMs: 5000 },
    timeoutMs: 30 * 60_000,
    progress: (line) => console.error(`bench chaos: ${line}`),
  });
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(
    `chaos (Proxmox simulator, ${Math.round(faultRate * 100)}% faults; ${result.workerKills} worker SIGKILLs, ` +
      `${result.serverRestarts} dev-server SIGKILL and restart): ${result.terminal}/${jobs} terminal, ` +
      `${result.completed} COMPLETED, ${result.wrongState} in a wrong state, in ${(result.elapsedMs / 1000).toFixed(0)} s`,
  );
  console.log(
    `  orphans ${result.orphans} (${Object.entries(result.orphansByKind)
      .map(([kind, list]) => `${kind} ${list.length}`)
      .join(', ')}); duplicate clones ${result.duplicateClones}; clones never destroyed ${result.undestroyedClones}; ` +
      `jobs with provisioning retried ${result.retriedProvisioning}; foreign VM ${result.foreignVmIntact ? 'intact' : 'GONE'}`,
  );
  console.log(`  simulator: ${result.injected.requests} requests, ${result.injected.faults} faults injected`);
  for (const problem of result.problems) console.log(`  problem: ${problem}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
