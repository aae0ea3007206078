// Which accelerator this host gives QEMU guests: probed once per boot of the host, not per VM or worker start,
// since a failing KVM probe costs its whole 15 s timeout.
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { probeKvm, type Accelerator } from './qemu-command';

interface CachedProbe {
  bootId: string;
  kernel: string;
  accelerator: Accelerator;
  reason: string;
}

/** `auto`: KVM when a kernel really boots under it (probeKvm), else TCG; the answer is kept in `cacheFile`. */
export async function resolveAccelerator(
  setting: 'auto' | Accelerator,
  kernel: string,
  cacheFile: string,
): Promise<{ accelerator: Accelerator; reason: string }> {
  if (setting !== 'auto') return { accelerator: setting, reason: `qemu.accelerator: ${setting}` };
  const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const cached = JSON.parse(await fs.readFile(cacheFile, 'utf8').catch(() => '{}')) as Partial<CachedProbe>;
  if (bootId && cached.bootId === bootId && cached.kernel === kernel && cached.accelerator) {
    return { accelerator: cached.accelerator, reason: `${cached.reason} (probed earlier this boot)` };
  }
  const probe = await probeKvm(kernel);
  const result: CachedProbe = { bootId, kernel, accelerator: probe.usable ? 'kvm' : 'tcg', reason: probe.reason };
  await fs.mkdir(dirname(cacheFile), { recursive: true });
  await fs.writeFile(cacheFile, JSON.stringify(result));
  return { accelerator: result.accelerator, reason: result.reason };
}
