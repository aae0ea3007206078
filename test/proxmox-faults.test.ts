// Proxmox under faults: retryable API errors and lock contention, and clone concurrency per storage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import type { ResolvedProfile } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { serveRepo } from './support/git-daemon';
import { storageLockTimeout } from '../simulators/proxmox/errors';
import { PveSim } from '../simulators/proxmox/server';
import { leftoverSnippets, leftoverVms, startPveStack } from './support/pve-stack';
import { SCRIPTED_AGENT } from './support/stack';

const JOBS = 20;
/**
 * A linked clone holds local-lvm's lock for its two volume steps (the cloud-init volume, the thin snapshot),
 * slowed to 150 ms each here: a clone queued behind more than ~3 others times out.
 */
const STORAGE = {
  linkedCloneMs: 400,
  storageLockWaitMs: 1000,
  storageSteps: { lvmthin: { allocImageMs: 150, cloneImageMs: 150 } },
};

describe('the Proxmox backend alone', () => {
  const profile = { name: 'p', backend: 'proxmox', node: 'pve', templateVmid: 9000 } as ResolvedProfile;

  /** 20 clones at once through one backend; returns how many timed out on the simulated storage lock. */
  async function parallelClones(cloneConcurrency: number): Promise<{ timeouts: number; failures: string[] }> {
    const snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-snippets-'));
    const sim = new PveSim({ snippetsDir, authFailureDelayMs: 10, latency: STORAGE });
    await sim.listen();
    sim.addTemplate(9000);
    const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
    const backend = new ProxmoxBackend({
      client,
      node: sim.node,
      vmidRange: { min: 7000, max: 7099 },
      snippetsDir,
      pollIntervalMs: 20,
      cloneConcurrency,
    });
    const results = await Promise.allSettled(
      Array.from({ length: JOBS }, async (_, i) => {
        const owner = { jobId: `j${i}`, workflowId: `j${i}` };
        await backend.clone({ vmid: await backend.allocate(owner, 1), owner }, profile);
      }),
    );
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    const timeouts = sim.state.stats.storageLockTimeouts;
    await client.close();
    await sim.close();
    rmSync(snippetsDir, { recursive: true, force: true });
    return { timeouts, failures };
  }

  test('without a per-storage limit, 20 parallel clones time out on the storage lock with PVE text', async () => {
    const { timeouts, failures } = await parallelClones(JOBS);
    expect(timeouts).toBeGreaterThan(0);
    expect(failures).toContainEqual(expect.stringContaining(storageLockTimeout('local-lvm')));
  });

  test('the per-storage clone limit makes 20 parallel clones succeed with no storage-lock timeout', async () => {
    expect(await parallelClones(2)).toEqual({ timeouts: 0, failures: [] });
  });
});

test(`${JOBS} concurrent jobs all complete with 10% retryable API errors and lock contention`, async () => {
  const pve = await startPveStack({
    sim: {
      latency: { ...STORAGE, bootMs: 300 },
      faults: { errorRate: 0.1, lockContention: 0.2 },
    },
  });
  const repo = await serveRepo(await createExampleRepo(pve.stack.home));
  try {
    const ids = Array.from({ length: JOBS }, (_, i) => `job-pve-fault-${i}`);
    const started = await Promise.all(
      ids.map((id) =>
        pve.stack.cli([
          'job',
          'run',
          '--profile',
          'yolo-ephemeral',
          '--repo',
          repo.url,
          '--task',
          `task ${id}`,
          '--agent-command',
          SCRIPTED_AGENT,
          '--id',
          id,
          '--detach',
        ]),
      ),
    );
    expect(started.map((r) => r.code)).toEqual(ids.map(() => 0));
    await Promise.all(ids.map((id) => pve.stack.waitForClose(id, 100_000)));
    const outcomes = await Promise.all(ids.map((id) => pve.stack.describe(id)));
    expect(outcomes.map((d) => [d.jobId, d.jobStatus, d.state, d.message ?? ''])).toEqual(
      ids.map((id) => [id, 'COMPLETED', 'DESTROYED', 'agent exited with code 0']),
    );
    // The modelled storage lock never timed out: the per-storage clone limit kept the queue short.
    // (Injected lock contention fails clones with the same text; those retry and are not counted.)
    expect(pve.sim.state.stats.storageLockTimeouts).toBe(0);
    pve.sim.state.faults.errorRate = 0;
    expect(leftoverVms(pve.sim).map((id) => pve.sim.vm(id)?.config)).toEqual([]);
    expect(leftoverSnippets(pve.snippetsDir)).toEqual([]);
    expect(pve.sim.guests!.running()).toEqual([]);
  } finally {
    await repo.close();
    await pve.close();
  }
}, 170_000);
