// The guest's address is net0's: the interface the agent reports with net0's MAC, its IPv4 once it has one.
// docker0 up first, or eth0 with only its link-local address while DHCP has not answered, is never READY.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import type { Owner, ResolvedProfile } from '../common/contract';
import { PveSim } from '../simulators/proxmox/server';
import { startPveStack } from './support/pve-stack';
import { sleep } from './support/stack';
import { guestBoot } from './support/guest-boot';

const DOCKER0 = { name: 'docker0', mac: '02:42:AC:11:00:01', ipv4: '172.17.0.1', prefix: 16 };
const owner: Owner = { jobId: 'job-addr', workflowId: 'job-addr' };
const profile = { name: 'p', backend: 'proxmox', cores: 1, memoryMb: 512, templateVmid: 9000 } as ResolvedProfile;

test('guestAddress: nothing while booting or link-local only, then eth0 by net0 MAC, never docker0', async () => {
  const snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-addr-'));
  const sim = new PveSim({ snippetsDir, authFailureDelayMs: 0, latency: { bootMs: 100, linkLocalMs: 400 } });
  await sim.listen();
  sim.addTemplate(9000);
  sim.state.extraGuestInterfaces = [DOCKER0];
  const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  const backend = new ProxmoxBackend({ client, node: 'pve', vmidRange: { min: 7000, max: 7009 }, snippetsDir });
  try {
    const vmid = await backend.allocate(owner, 1);
    await backend.clone({ vmid, owner }, profile);
    await backend.configure(
      { vmid, owner },
      profile,
      guestBoot(vmid, { jobId: owner.jobId, controllerUrl: 'http://127.0.0.1:1' }),
    );
    await backend.start({ vmid, owner });
    expect(await backend.guestAddress({ vmid, owner })).toBeUndefined(); // the agent is not up yet
    await sleep(150);
    // Booted: docker0 (listed first) has 172.17.0.1, eth0 only fe80::…; the guest has no address yet.
    const nics = await client.get<{ result: { name: string }[] }>(
      `/nodes/pve/qemu/${vmid}/agent/network-get-interfaces`,
    );
    expect(nics.result.map((n) => n.name)).toEqual(['lo', 'docker0', 'eth0']);
    expect(await backend.guestAddress({ vmid, owner })).toBeUndefined();
    await sleep(400);
    expect(await backend.guestAddress({ vmid, owner })).toBe(`10.77.${(vmid >> 8) & 255}.${vmid & 255}`);
  } finally {
    await client.close();
    await sim.close();
    rmSync(snippetsDir, { recursive: true, force: true });
  }
});

test('a sandbox whose guest brings docker0 up before eth0 is READY at eth0 address', async () => {
  const pve = await startPveStack({ sim: { latency: { bootMs: 300, linkLocalMs: 1500 } } });
  pve.sim.state.extraGuestInterfaces = [DOCKER0];
  try {
    const created = await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', 'sbx-docker0']);
    expect({ code: created.code, stderr: created.code ? created.stderr : '' }).toEqual({ code: 0, stderr: '' });
    const ready = await pve.stack.waitForState('sbx-docker0', (d) => d.state === 'RUNNING', 'RUNNING');
    const vmid = ready.vmid!;
    // The guest runner is a host process: its eth0 lease is on 127.77/16 (the simulator's loopback mode).
    expect(ready.address).toBe(`127.77.${(vmid >> 8) & 255}.${vmid & 255}`);
    const readyAt = ready.timeline.find((t) => t.state === 'READY')!;
    const started = pve.sim.requests.find((r) => r.method === 'POST' && r.path.endsWith(`/${vmid}/status/start`))!;
    // Not before the lease: boot (0.3 s) plus the link-local-only phase (1.5 s) after the start call.
    expect(readyAt.at - Date.parse(started.time)).toBeGreaterThanOrEqual(1800 - 100);
    expect((await pve.stack.cli(['sandbox', 'destroy', 'sbx-docker0', '--yes'])).code).toBe(0);
    await pve.stack.waitForClose('sbx-docker0');
  } finally {
    await pve.close();
  }
}, 120_000);
