// Simulated storages: each node's local ones, their volume names and features, and the storage lock, held
// only around the volume steps pve-storage takes it for (data/storage-locks.json, with the evidence).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { simulatorData } from './data';
import { storageFlockTimeout } from './errors';
import type { FlockTable } from './tasks';

export type StorageType = 'dir' | 'lvmthin' | 'zfspool';
export type VolumeStep = 'vdisk_clone' | 'vdisk_alloc' | 'vdisk_free' | 'vdisk_create_base';

export interface SimStorage {
  id: string;
  type: StorageType;
  /** Content types, as `content` in storage.cfg. */
  content: string[];
  shared: 0 | 1;
  maxdisk: number;
}

const GiB = 1024 ** 3;

/** A fresh PVE node's `local` (with snippets and images enabled, as agentlab needs) and `local-lvm`, plus a ZFS pool. */
export function defaultStorages(): SimStorage[] {
  return [
    {
      id: 'local',
      type: 'dir',
      content: ['backup', 'images', 'import', 'iso', 'snippets', 'vztmpl'],
      shared: 0,
      maxdisk: 100 * GiB,
    },
    { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], shared: 0, maxdisk: 400 * GiB },
    { id: 'local-zfs', type: 'zfspool', content: ['images', 'rootdir'], shared: 0, maxdisk: 400 * GiB },
  ];
}

interface LockModel {
  steps: Record<VolumeStep | 'data_copy', { locked: boolean }>;
}
let lockModel: LockModel | undefined;
/** Whether pve-storage runs a step under cluster_lock_storage (read from the evidence file, not assumed). */
export function stepIsLocked(step: VolumeStep | 'data_copy'): boolean {
  lockModel ??= JSON.parse(readFileSync(simulatorData('storage-locks.json'), 'utf8')) as LockModel;
  return lockModel.steps[step].locked;
}

/** Runs one volume step for `ms`, under the storage's lock when pve-storage takes it; times the lock out as PVE does. */
export async function volumeStep(
  ctx: { flocks: FlockTable; node: string; waitMs: number; onTimeout: () => void; onHeld: (ms: number) => void },
  storage: SimStorage,
  step: VolumeStep,
  ms: number,
): Promise<void> {
  const work = () => sleep(ms);
  if (!stepIsLocked(step)) return work();
  // A local storage's lock is a flock on the node doing the work; a shared one is the cluster's.
  const key = storage.shared ? `storage-${storage.id}` : `${ctx.node}/storage-${storage.id}`;
  try {
    await ctx.flocks.with(key, ctx.waitMs, storageFlockTimeout(storage.id), () => {
      ctx.onHeld(ms);
      return work();
    });
  } catch (err) {
    ctx.onTimeout();
    throw err;
  }
}

/** Volume names as each plugin makes them (find_free_diskname, clone_image's return value). */
export const volumes = {
  disk(storage: SimStorage, vmid: number, index: number, format = 'qcow2'): string {
    return storage.type === 'dir' ? `${vmid}/vm-${vmid}-disk-${index}.${format}` : `vm-${vmid}-disk-${index}`;
  },
  base(storage: SimStorage, vmid: number, index: number, format = 'qcow2'): string {
    return storage.type === 'dir' ? `${vmid}/base-${vmid}-disk-${index}.${format}` : `base-${vmid}-disk-${index}`;
  },
  cloudinit(storage: SimStorage, vmid: number): string {
    return storage.type === 'dir' ? `${vmid}/vm-${vmid}-cloudinit.qcow2` : `vm-${vmid}-cloudinit`;
  },
  /** A linked clone of `base` (a base volume name on `storage`). */
  linked(storage: SimStorage, base: string, vmid: number, index: number): string {
    if (storage.type === 'lvmthin') return `vm-${vmid}-disk-${index}`;
    if (storage.type === 'zfspool') return `${base}/vm-${vmid}-disk-${index}`;
    return `${base}/${vmid}/vm-${vmid}-disk-${index}.qcow2`;
  },
};

/** The format of a volume name (raw for block storages). */
export const volumeFormat = (storage: SimStorage, volname: string): string =>
  storage.type === 'dir' ? (/\.(\w+)$/.exec(volname)?.[1] ?? 'raw') : 'raw';

const isBase = (volname: string) => /(^|\/)base-\d+-disk-\d+(\.\w+)?$/.test(volname);

/** volume_has_feature of each plugin (LvmThinPlugin, ZFSPoolPlugin, Plugin) for the features the simulator uses. */
export function volumeHasFeature(storage: SimStorage, feature: 'clone' | 'snapshot', volname: string): boolean {
  const base = isBase(volname);
  if (feature === 'clone') return base;
  if (storage.type === 'dir') return !base && volumeFormat(storage, volname) === 'qcow2';
  return !base;
}
