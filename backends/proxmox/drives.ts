// A VM config's drives as the backend reads them: each drive's property string, the boot disk and its size.
import {
  DRIVE_FORMAT,
  isCloudInitVolume,
  parsePropertyString,
  type PropertyFormat,
  type PropertyValues,
} from '../../common/property-string';

export type VmConfig = Record<string, string | number | undefined>;

const DRIVE_KEY = /^(ide|sata|scsi|virtio)\d+$/;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
export const GIB = 1024 ** 3;

/** A VM's drives (`scsi0`, `ide2`, …) in key order, each read as a property string; unreadable ones are left out. */
export function driveEntries(config: VmConfig): [string, PropertyValues][] {
  return Object.keys(config)
    .filter((key) => DRIVE_KEY.test(key))
    .sort()
    .flatMap((key) => {
      const drive = readProperty(config[key], DRIVE_FORMAT);
      return typeof drive === 'string' ? [] : [[key, drive] as [string, PropertyValues]];
    });
}

const isDisk = (drive: PropertyValues): boolean => drive.media !== 'cdrom' && !isCloudInitVolume(drive.file);

/** The storage id of the template's first disk (`local-lvm:base-9000-disk-0` → `local-lvm`). */
export function templateDiskStorage(config: VmConfig): string {
  const disk = driveEntries(config).find(([, d]) => isDisk(d));
  return disk?.[1].file?.split(':')[0] ?? 'unknown';
}

export interface BootDisk {
  /** The drive's key, which resize takes as `disk` (e.g. scsi0). */
  key: string;
  /** Its size as the config writes it (e.g. 8G), for messages. */
  size: string;
  sizeBytes: number;
}

/**
 * The disk the VM boots from, as qemu-server's bootdisk_size picks it: the first disk (no cdrom, no
 * cloud-init drive) of `boot: order=…`, else of the legacy `bootdisk`, else the first disk by key.
 */
export function bootDisk(config: VmConfig): BootDisk | undefined {
  const order = /(?:^|,)order=([^,]+)/.exec(String(config.boot ?? ''))?.[1]?.split(';') ?? [];
  const legacy = config.bootdisk === undefined ? [] : [String(config.bootdisk)];
  const drives = new Map(driveEntries(config));
  const candidates = [...order, ...legacy, ...drives.keys()];
  for (const key of candidates) {
    const drive = drives.get(key);
    if (!drive || !isDisk(drive)) continue;
    const size = String(drive.size ?? '');
    return { key, size, sizeBytes: sizeBytes(size) };
  }
  return undefined;
}

/** A drive's `size` (`8G`, `2252M`, `8589934592`) in bytes; 0 when it has none. */
export function sizeBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(text);
  return m ? Math.round(Number(m[1]) * SIZE_UNITS[m[2] ?? '']!) : 0;
}

/** A property string read leniently (a newer Proxmox may add keys), or the reason it cannot be read. */
export function readProperty(value: unknown, format: PropertyFormat): PropertyValues | string {
  try {
    return parsePropertyString(String(value ?? ''), format, { lenient: true });
  } catch (err) {
    return (err as Error).message;
  }
}
