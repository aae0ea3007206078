// The storage lock as pve-storage takes it (data/storage-locks.json): around each volume step of a clone, not
// around the clone. Parallel linked clones on lvmthin, zfspool and dir storages overlap; full-clone copies too.
import { readFileSync } from 'node:fs';
import { ProxmoxClient } from '../backends/proxmox/client';
import { simulatorData } from '../simulators/proxmox/data';
import { storageLockTimeout } from '../simulators/proxmox/errors';
import { PveSim } from '../simulators/proxmox/server';
import type { LatencyOverrides } from '../simulators/proxmox/state';

const STORAGES = [
  ['local-lvm', 'lvmthin'],
  ['local-zfs', 'zfspool'],
  ['local', 'dir'],
] as const;
const CLONES = 8;

let open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const resource of open.reverse()) await resource.close();
  open = [];
});

/** CLONES clones of template 9000 on `storage` at once; resolves with their outcomes and the wall time. */
async function parallelClones(storage: string, latency: LatencyOverrides, full = false) {
  const sim = new PveSim({ authFailureDelayMs: 0, latency });
  await sim.listen();
  sim.addTemplate(9000, { storage });
  const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  open.push(sim, client);
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: CLONES }, async (_, i) => {
      const upid = await client.post<string>('/nodes/pve/qemu/9000/clone', { newid: 200 + i, full });
      await client.waitTask(upid, { initialIntervalMs: 10, maxIntervalMs: 20 });
    }),
  );
  const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [(o.reason as Error).message] : []));
  return { sim, failures, ms: performance.now() - started };
}

describe.each(STORAGES)('%s (%s)', (storage, type) => {
  test('linked clones hold the lock for their volume steps only, so they overlap', async () => {
    const latency = { linkedCloneMs: 400, storageSteps: { [type]: { allocImageMs: 20, cloneImageMs: 20 } } };
    const { sim, failures, ms } = await parallelClones(storage, latency);
    expect(failures).toEqual([]);
    // Each clone held the lock for its cloud-init allocation and its disk's clone_image: 40 ms, not 400.
    expect(sim.state.stats.storageLockHeldMs).toBe(CLONES * 40);
    expect(ms).toBeLessThan((CLONES * 400) / 2); // one clone at a time would take 3.2 s
    const disk = String(sim.vm(200)?.config.scsi0);
    expect(disk).toMatch(
      {
        lvmthin: /^local-lvm:vm-200-disk-0,/,
        zfspool: /^local-zfs:base-9000-disk-0\/vm-200-disk-0,/,
        dir: /^local:9000\/base-9000-disk-0\.qcow2\/200\/vm-200-disk-0\.qcow2,/,
      }[type],
    );
  });

  test('the lock is real: volume steps longer than the wait time out with the catalogued text', async () => {
    const latency = {
      linkedCloneMs: 300,
      storageLockWaitMs: 250,
      storageSteps: { [type]: { allocImageMs: 100, cloneImageMs: 100 } },
    };
    const { sim, failures } = await parallelClones(storage, latency);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures).toContainEqual(expect.stringContaining(storageLockTimeout(storage)));
    expect(sim.state.stats.storageLockTimeouts).toBe(failures.length);
  });

  test('full clones allocate under the lock and copy outside it: the copies overlap', async () => {
    const latency = { fullCloneMs: 400, storageSteps: { [type]: { allocImageMs: 20 } } };
    const { sim, failures, ms } = await parallelClones(storage, latency, true);
    expect(failures).toEqual([]);
    expect(sim.state.stats.storageLockHeldMs).toBe(CLONES * 40); // two allocations each: cloud-init and disk
    expect(ms).toBeLessThan((CLONES * 400) / 2);
  });
});

test('the evidence: every modelled step and storage type names the source it was read from', () => {
  const model = JSON.parse(readFileSync(simulatorData('storage-locks.json'), 'utf8')) as {
    steps: Record<string, { locked: boolean; evidence: string }>;
    types: Record<string, Record<string, string>>;
  };
  expect(Object.fromEntries(Object.entries(model.steps).map(([k, v]) => [k, v.locked]))).toEqual({
    vdisk_clone: true,
    vdisk_alloc: true,
    data_copy: false,
    vdisk_create_base: true,
    vdisk_free: true,
  });
  for (const step of Object.values(model.steps)) expect(step.evidence).toMatch(/src\/PVE\/\S+\.pm/);
  expect(Object.keys(model.types).sort()).toEqual(['dir', 'lvmthin', 'zfspool']);
  for (const type of Object.values(model.types))
    expect(type.clone_image).toMatch(/Plugin\.pm clone_image \(line \d+\)/);
});
