// The chaos run, small: 10 jobs on the Proxmox simulator with 10% injected faults, the worker SIGKILLed twice
// or more and the Temporal dev server SIGKILLed once and restarted on its database. Whatever failed, every
// job ends COMPLETED with its VM destroyed, nothing is left behind, no attempt cloned twice, and somebody
// else's VM is untouched. (`npm run bench -- chaos` runs the same at 100 jobs.)
import { runChaos, type ChaosResult } from '../bench/chaos';

let result: ChaosResult;

beforeAll(async () => {
  result = await runChaos({
    jobs: 10,
    faultRate: 0.1,
    workerKillEveryMs: [4000, 8000],
    serverKillAtMs: 7000,
    agentSeconds: 3,
    latency: { linkedCloneMs: 300, startMs: 300, bootMs: 1000 },
    timeoutMs: 240_000,
  });
}, 300_000);

test('the chaos happened: workers killed, the server restarted, faults injected', () => {
  expect(result.workerKills).toBeGreaterThanOrEqual(2);
  expect(result.serverRestarts).toBe(1);
  expect(result.injected.faults).toBeGreaterThan(0);
});

test('every job is terminal, COMPLETED with its VM destroyed', () => {
  expect(result.problems).toEqual([]);
  expect({ terminal: result.terminal, completed: result.completed, wrongState: result.wrongState }).toEqual({
    terminal: 10,
    completed: 10,
    wrongState: 0,
  });
});

test('no orphan: VMs, snippets, guest runners, guest disks, processes', () => {
  expect(result.orphansByKind).toEqual({ vms: [], snippets: [], guestRunners: [], guestDirs: [], processes: [] });
  expect(result.orphans).toBe(0);
});

test('no provisioning attempt cloned twice, every clone destroyed, the foreign VM intact', () => {
  expect(result.duplicateClones).toBe(0);
  expect(result.undestroyedClones).toBe(0);
  expect(result.foreignVmIntact).toBe(true);
});
