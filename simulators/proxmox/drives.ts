// A VM's drives as volumes on simulated storages, and the storage-lock-aware volume step of one node.
import { DRIVE_FORMAT, isCloudInitVolume, parsePropertyString } from '../../common/property-string';
import type { ConfigValue, SimState } from './state';
import { volumeStep, type SimStorage, type VolumeStep } from './storage';

export const DRIVE_KEY = /^(ide|sata|scsi|virtio)\d+$|^(efidisk0|tpmstate0)$/;

export interface Drive {
  key: string;
  values: Record<string, string>;
  storage: SimStorage;
  volname: string;
  cloudinit: boolean;
}

/** A VM's volumes in key order: disks and the cloud-init drive, not CD-ROMs, paths or unknown storages. */
export function drives(state: SimState, config: Record<string, ConfigValue>): Drive[] {
  return Object.keys(config)
    .filter((key) => DRIVE_KEY.test(key))
    .sort()
    .flatMap((key) => {
      const values = parsePropertyString(String(config[key]), DRIVE_FORMAT, { lenient: true });
      const [id, volname] = (values.file ?? '').split(/:(.*)/s);
      const storage = state.storage(id ?? '');
      const cloudinit = isCloudInitVolume(values.file);
      if (!storage || !volname || (values.media === 'cdrom' && !cloudinit)) return [];
      return [{ key, values, storage, volname, cloudinit }];
    });
}

/** Runs a volume step on `node`: under its storage's lock when pve-storage takes one, counted in the stats. */
export function runVolumeStep(
  state: SimState,
  node: string,
  storage: SimStorage,
  step: VolumeStep,
  ms: number,
): Promise<void> {
  return volumeStep(
    {
      flocks: state.flocks,
      node,
      waitMs: state.latency.storageLockWaitMs,
      onTimeout: () => state.stats.storageLockTimeouts++,
      onHeld: (held) => (state.stats.storageLockHeldMs += held),
    },
    storage,
    step,
    ms,
  );
}

/** format_size: bytes as a config writes them (`8G`, `4M`). */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ];
  for (const [unit, scale] of units) if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  return String(bytes);
}
