// On a cluster, a worker drives the node it runs on (its `node`, its task queue) and no other: clone,
// configure, start and its snippet all stay on that host; listing for reconcile sees only that node's VMs.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import { ownerDescription, ownerTag } from '../backends/proxmox/marks';
import { PveSim } from '../simulators/proxmox/server';
import { startPveStack, TEMPLATE_VMID } from './support/pve-stack';

const NODES = ['node1', 'node2', 'node3'];

test('a worker named node3 on a three-node cluster clones, configures and starts on node3 alone', async () => {
  const pve = await startPveStack({ nodes: NODES, node: 'node3' });
  try {
    expect(pve.sim.vm(TEMPLATE_VMID)?.node).toBe('node3');
    const created = await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', 'sbx-node3']);
    expect({ code: created.code, stderr: created.code ? created.stderr : '' }).toEqual({ code: 0, stderr: '' });
    const { vmid } = await pve.stack.waitForState('sbx-node3', (d) => d.state === 'RUNNING', 'RUNNING');
    expect(pve.sim.vm(vmid!)?.node).toBe('node3');
    expect(readdirSync(pve.snippetsDir)).toEqual([`agentlab-${vmid}.yaml`]); // this host's snippets directory

    const calls = pve.sim.requests.map((r) => `${r.method} ${r.path}`);
    const nodesAsked = new Set(calls.flatMap((c) => /^\w+ \/nodes\/([^/]+)\//.exec(c)?.[1] ?? []));
    expect([...nodesAsked]).toEqual(['node3']);
    expect(calls).toEqual(
      expect.arrayContaining([
        `POST /nodes/node3/qemu/${TEMPLATE_VMID}/clone`,
        `PUT /nodes/node3/qemu/${vmid}/config`,
        `POST /nodes/node3/qemu/${vmid}/status/start`,
      ]),
    );
    expect((await pve.stack.cli(['sandbox', 'destroy', 'sbx-node3', '--yes'])).code).toBe(0);
    await pve.stack.waitForClose('sbx-node3');
    expect(pve.sim.vm(vmid!)).toBeUndefined();
  } finally {
    await pve.close();
  }
}, 120_000);

test("listOwned sees this node's sandboxes only: another node's are its own worker's", async () => {
  const snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-nodes-'));
  const sim = new PveSim({ nodes: NODES, snippetsDir, authFailureDelayMs: 0 });
  await sim.listen();
  const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  try {
    for (const [vmid, node] of [
      [7001, 'node1'],
      [7002, 'node2'],
    ] as const) {
      const owner = { jobId: `job-${vmid}`, workflowId: `job-${vmid}` };
      const tags = `agentlab;${ownerTag(owner.workflowId)}`;
      sim.addVm(vmid, { tags, description: ownerDescription(owner, 1) }, false, node);
    }
    const backend = (node: string) =>
      new ProxmoxBackend({ client, node, vmidRange: { min: 7000, max: 7099 }, snippetsDir });
    expect((await backend('node1').listOwned()).map((v) => v.vmid)).toEqual([7001]);
    expect((await backend('node2').listOwned()).map((v) => v.vmid)).toEqual([7002]);
    await expect(backend('node9').checkNode()).rejects.toThrow(
      'node node9 is not in the cluster, whose nodes are node1, node2, node3',
    );
  } finally {
    await client.close();
    await sim.close();
    rmSync(snippetsDir, { recursive: true, force: true });
  }
});
