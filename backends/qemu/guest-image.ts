// The QEMU guest image scripts/build-guest-image.sh makes (docs/qemu-guest.md), and the per-VM disks on it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { packageRoot } from '../../common/paths';

export interface GuestImage {
  /** .tools/guest-image/<content hash>: the hash of every input of the image. */
  dir: string;
  hash: string;
  /** The base disk, qcow2; never written to: each VM boots an overlay on it. */
  disk: string;
  kernel: string;
  initrd: string;
  /** The kernel command line the image is made for (root=/dev/vda: one filesystem, no partitions). */
  kernelCommandLine: string;
}

/** The image in `dir`, as its image.json describes it. */
export function readGuestImage(dir: string): GuestImage {
  const manifest = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as {
    hash: string;
    kernelCommandLine: string;
  };
  return {
    dir,
    hash: manifest.hash,
    disk: join(dir, 'disk.qcow2'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    kernelCommandLine: manifest.kernelCommandLine,
  };
}

/**
 * Builds the image unless the cache already holds one for the current inputs (then this takes well under a
 * second); `built` says which. `out` overrides the cache directory (default .tools/guest-image). The script's
 * progress goes on to this process's stderr.
 */
export async function ensureGuestImage(options: { out?: string } = {}): Promise<{ image: GuestImage; built: boolean }> {
  const script = join(packageRoot(), 'scripts', 'build-guest-image.sh');
  const child = execa('bash', [script, ...(options.out ? ['--out', options.out] : [])]);
  child.stderr?.pipe(process.stderr);
  const { stdout, stderr } = await child;
  const dir = stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(join(dir, 'image.json'))) throw new Error(`${script} printed no image directory (got "${dir}")`);
  return { image: readGuestImage(dir), built: !/: cached$/m.test(stderr) };
}

/**
 * A VM's disk: a qcow2 overlay whose backing file is the base image, so a clone costs milliseconds and the
 * base stays untouched. The backing path is absolute: the overlay may live anywhere.
 */
export async function createOverlay(base: string, overlay: string, size?: string): Promise<void> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, overlay, ...(size ? [size] : [])]);
}
