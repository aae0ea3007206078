// A QEMU VM's files on its host: everything of one VM lives in <dataDir>/qemu/<vmid>/, so destroying it is
// removing one directory, and a restarted worker finds every VM again by listing them.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Owner } from '../../common/contract';

export const qemuRoot = (dataDir: string): string => join(dataDir, 'qemu');

/** The paths of one VM's files. */
export function vmFiles(dataDir: string, vmid: number) {
  const dir = join(qemuRoot(dataDir), String(vmid));
  return {
    dir,
    owner: join(dir, 'owner.json'),
    /** The qcow2 overlay on the guest image: the VM's only disk, and where its snapshots live. */
    disk: join(dir, 'disk.qcow2'),
    /** The NoCloud seed ISO; until deleteBootstrap it carries the bootstrap token. */
    seed: join(dir, 'seed.iso'),
    /** Cores, memory, MAC, address: written by configure, read by start. */
    settings: join(dir, 'vm.json'),
    pid: join(dir, 'qemu.pid'),
    qmp: join(dir, 'qmp.sock'),
    qga: join(dir, 'qga.sock'),
    console: join(dir, 'console.log'),
  };
}
export type VmFiles = ReturnType<typeof vmFiles>;

const ownerSchema = z.object({
  jobId: z.string(),
  workflowId: z.string(),
  attempt: z.number().int(),
  createdAt: z.string(),
});
export type OwnerRecord = z.output<typeof ownerSchema>;

export const settingsSchema = z.object({
  cores: z.number().int().positive(),
  memoryMb: z.number().int().positive(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  instanceId: z.string().min(1),
  hostname: z.string().min(1),
  cidr: z.string(),
  gateway: z.string(),
  nameservers: z.array(z.string()),
});
export type VmSettings = z.output<typeof settingsSchema>;

/** The owner mark, or undefined when there is none or it cannot be read (then the VM is not ours to touch). */
export async function readOwner(files: VmFiles): Promise<OwnerRecord | undefined> {
  const text = await fs.readFile(files.owner, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function ownerRecord(owner: Owner, attempt: number): OwnerRecord {
  return { jobId: owner.jobId, workflowId: owner.workflowId, attempt, createdAt: new Date().toISOString() };
}

export async function readSettings(files: VmFiles): Promise<VmSettings> {
  const text = await fs.readFile(files.settings, 'utf8');
  const parsed = settingsSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${files.settings} is not a VM's settings: ${parsed.error.message}`);
  return parsed.data;
}

/** Written via a temp file and rename: a crash never leaves half a file under the real name. */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await fs.writeFile(temp, content, { mode });
  await fs.rename(temp, path);
}

export async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

/**
 * A locally administered MAC in QEMU's 52:54:00 prefix from the VMID's low 24 bits: unique on the bridge,
 * since a VMID range never spans more addresses than the bridge's subnet has (LocalNetwork checks it).
 */
export function macFor(vmid: number): string {
  const low = vmid % 2 ** 24;
  return ['52', '54', '00', ...[16, 8, 0].map((shift) => ((low >> shift) & 0xff).toString(16).padStart(2, '0'))].join(
    ':',
  );
}
