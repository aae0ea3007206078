// The simulator's guests: a started VM runs the real guest runner with its snippet's bootstrap; power-off kills it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import type { ResolvedProfile } from '../common/contract';
import { agentRunnerPath } from '../common/paths';
import { PveSim } from '../simulators/proxmox/server';
import { eventually } from './support/stack';
import { guestBoot } from './support/guest-boot';

const profile = { name: 'p', backend: 'proxmox', node: 'pve', cores: 1, memoryMb: 512, templateVmid: 9000 };
const owner = { jobId: 'job-g', workflowId: 'job-g' };

function alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

test.each([false, true])(
  'allowLocalRepos=%s: runner launched after boot, killed on stop and destroy',
  async (allow) => {
    const root = mkdtempSync(join(tmpdir(), 'agentlab-guests-'));
    const sim = new PveSim({
      snippetsDir: root,
      authFailureDelayMs: 10,
      latency: { bootMs: 200 },
      launchGuestRunner: { runnerPath: agentRunnerPath(), workRoot: join(root, 'guests'), allowLocalRepos: allow },
    });
    await sim.listen();
    sim.addTemplate(9000);
    const client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
    const backend = new ProxmoxBackend({
      client,
      node: sim.node,
      vmidRange: { min: 7000, max: 7009 },
      snippetsDir: root,
      pollIntervalMs: 10,
    });
    try {
      const vmid = await backend.allocate(owner, 1);
      await backend.clone({ vmid, owner }, profile as ResolvedProfile);
      // Nobody listens there: the runner keeps retrying its claim, like a guest whose host is unreachable.
      await backend.configure(
        { vmid, owner },
        profile as ResolvedProfile,
        guestBoot(vmid, {
          jobId: 'job-g',
          controllerUrl: 'http://127.0.0.1:9',
        }),
      );
      await backend.start({ vmid, owner });
      const pgid = sim.guests!.pid(vmid)!;
      expect(alive(pgid)).toBe(true);
      const bootstrap = JSON.parse(readFileSync(sim.guests!.bootstrapFile(vmid), 'utf8'));
      expect(bootstrap).toMatchObject({ vmid, jobId: 'job-g', controllerUrl: 'http://127.0.0.1:9' });
      expect(bootstrap.allowLocalRepos === true).toBe(allow);
      // The guest agent answers only after the boot delay, with an address on loopback.
      expect(await backend.guestAddress({ vmid, owner })).toBeUndefined();
      const address = await eventually('the guest address', () => backend.guestAddress({ vmid, owner }), 5000);
      expect(address).toMatch(/^127\.77\.\d+\.\d+$/);
      expect(alive(pgid)).toBe(true); // the runner itself now, retrying its claim

      await backend.stop({ vmid, owner });
      await eventually('the runner to die on stop', async () => !alive(pgid), 5000);
      await backend.start({ vmid, owner });
      const again = sim.guests!.pid(vmid)!;
      expect(alive(again)).toBe(true);
      expect(await backend.destroy({ vmid, owner })).toBe('destroyed'); // stops, then destroys
      await eventually('the runner to die on destroy', async () => !alive(again), 5000);
      expect(sim.guests!.running()).toEqual([]);
    } finally {
      await client.close();
      await sim.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
