// A TestStack whose worker drives the Proxmox backend against an in-process simulator running real guest runners.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedProfile } from '../../common/contract';
import { agentRunnerPath } from '../../common/paths';
import { PveSim, type PveSimOptions } from '../../simulators/proxmox/server';
import { TestStack } from './stack';

/** Outside the worker's range (7000-7999): the foreign VM must never be touched. */
export const FOREIGN_VMID = 150;
export const TEMPLATE_VMID = 9000;

/** A resolved yolo-ephemeral profile on node `pve`, for driving the backend directly; `resources` as the test needs. */
export function pveTestProfile(resources: { cores: number; memoryMb: number }): ResolvedProfile {
  return {
    name: 'yolo-ephemeral',
    backend: 'proxmox',
    node: 'pve',
    ttlMs: 3_600_000,
    maxTtlMs: 86_400_000,
    keepalive: false,
    agentTimeoutMs: 0,
    provisioningAttempts: 3,
    bootTimeoutMs: 60_000,
    bootstrapTimeoutMs: 60_000,
    teardownAttempts: 3,
    ...resources,
    templateVmid: TEMPLATE_VMID,
  };
}

export interface PveStack {
  sim: PveSim;
  stack: TestStack;
  snippetsDir: string;
  close(): Promise<void>;
}

export async function startPveStack(
  options: {
    sim?: PveSimOptions;
    /** Overrides of the yolo-ephemeral profile (kept on the proxmox backend and template 9000). */
    profile?: Record<string, unknown>;
    extraProfiles?: Record<string, unknown>[];
    cloneConcurrency?: number;
    /** The cluster's nodes (default: one, named as the worker's node). */
    nodes?: string[];
    /** The worker's node: its task queue, and the Proxmox node it drives (default: a fresh name). */
    node?: string;
    /** Further top-level config sections (e.g. ssh). */
    config?: Record<string, unknown>;
  } = {},
): Promise<PveStack> {
  const root = mkdtempSync(join(tmpdir(), 'agentlab-pve-'));
  // AGENTLAB_KEEP_PVE=1 keeps snippets and guest consoles (console-<vmid>.log) for a post-mortem.
  if (process.env.AGENTLAB_KEEP_PVE) console.log(`pve stack in ${root}`);
  const snippetsDir = join(root, 'snippets');
  mkdirSync(snippetsDir);
  // A fresh node name per stack keeps its host task queue (agentlab-host-<node>) its own.
  const node = options.node ?? `t${randomBytes(3).toString('hex')}`;
  const sim = new PveSim({
    nodes: options.nodes ?? [node],
    snippetsDir,
    authFailureDelayMs: 10,
    // Jobs clone over git:// (serveRepo): the CLI allows a path only for local-backend profiles.
    launchGuestRunner: { runnerPath: agentRunnerPath(), workRoot: join(root, 'guests') },
    // Volumes with contents: a workspace's data survives the VMs it moves between.
    volumeDataDir: join(root, 'volumes'),
    ...options.sim,
  });
  await sim.listen();
  sim.addTemplate(TEMPLATE_VMID, { node });
  sim.addVm(FOREIGN_VMID, { description: 'somebody else' }, true, node);
  const stack = new TestStack({
    node,
    backends: ['proxmox'],
    extraConfig: {
      ...options.config,
      // No proxmox.node: the worker drives the node it runs on, its own `node`.
      proxmox: {
        url: sim.url,
        tokenId: sim.tokenId,
        tokenSecret: sim.tokenSecret,
        snippetsDir,
        ...(options.cloneConcurrency ? { cloneConcurrency: options.cloneConcurrency } : {}),
      },
    },
    profiles: [
      {
        name: 'yolo-ephemeral',
        backend: 'proxmox',
        templateVmid: TEMPLATE_VMID,
        ttl: '10m',
        provisioning: { attempts: 3, bootTimeout: '30s', bootstrapTimeout: '60s' },
        teardown: { attempts: 10 },
        ...options.profile,
      },
      ...(options.extraProfiles ?? []),
    ],
  });
  await stack.init();
  try {
    await stack.startWorker();
  } catch (err) {
    await sim.close();
    throw new Error(`${(err as Error).message}\nworker log:\n${stack.workerLog}`);
  }
  return {
    sim,
    stack,
    snippetsDir,
    close: async () => {
      await stack.close();
      await sim.close();
      if (!process.env.AGENTLAB_KEEP_PVE) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** VMIDs on the simulated node other than the template and the foreign VM. */
export const leftoverVms = (sim: PveSim): number[] =>
  [...sim.state.vms.keys()].filter((id) => id !== TEMPLATE_VMID && id !== FOREIGN_VMID);

export const leftoverSnippets = (dir: string): string[] => readdirSync(dir);
