// The orphan sweep through the Proxmox code path: a terminated sandbox's VM is found by its tags in the
// simulator and destroyed; the foreign VM (no tags) and a live sandbox's VM stay exactly as they were.
import type { ReconcileReport } from '../common/contract';
import { FOREIGN_VMID, leftoverVms, startPveStack, type PveStack } from './support/pve-stack';

let pve: PveStack;
beforeAll(async () => {
  pve = await startPveStack({ sim: { latency: { bootMs: 300 } } });
});
afterAll(() => pve?.close());

async function sandbox(id: string): Promise<number> {
  expect((await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', id, '--json'])).code).toBe(0);
  return (await pve.stack.waitForState(id, (d) => d.state === 'RUNNING', 'RUNNING', 90_000)).vmid!;
}

test('sandbox reconcile destroys the VM of a terminated workflow, and nothing else', async () => {
  const orphanVmid = await sandbox('pve-orphan');
  const liveVmid = await sandbox('pve-live');
  await pve.stack.client.workflow.getHandle('pve-orphan').terminate('test: terminated by an operator');
  const foreignBefore = structuredClone(pve.sim.vm(FOREIGN_VMID)!);
  expect(leftoverVms(pve.sim).sort()).toEqual([orphanVmid, liveVmid].sort());

  const result = await pve.stack.cli(['sandbox', 'reconcile', '--json'], { timeoutMs: 120_000 });
  expect(result.code).toBe(0);
  const { reports } = JSON.parse(result.stdout) as { reports: ReconcileReport[] };
  expect(reports).toEqual([
    { node: pve.stack.node, backend: 'proxmox', checked: 2, destroyed: [orphanVmid], kept: [liveVmid], failed: [] },
  ]);
  expect(pve.sim.vm(orphanVmid)).toBeUndefined();
  expect(pve.sim.vm(liveVmid)!.status).toBe('running');
  expect(pve.sim.vm(FOREIGN_VMID)).toEqual(foreignBefore);

  expect((await pve.stack.cli(['sandbox', 'destroy', 'pve-live', '--yes'])).code).toBe(0);
  await pve.stack.waitForClose('pve-live');
  expect(leftoverVms(pve.sim)).toEqual([]);
});
