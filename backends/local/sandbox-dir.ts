// A local sandbox's folder on its host (<dataDir>/sandboxes/<vmid>/): its owner mark, its boot record, and the
// records every sandbox shares (journal, injected faults).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Owner } from '../../common/contract';
import { isAlive } from '../../common/process-alive';
import type { FoundVm } from '../ownership';

export const sandboxesRoot = (dataDir: string): string => join(dataDir, 'sandboxes');

/** A sandbox's folder on its host: its owner mark, boot record and writable directories. */
export const sandboxDir = (dataDir: string, vmid: number): string => join(sandboxesRoot(dataDir), String(vmid));

/** `owner.json`: the mark that makes a sandbox ours, written when its VMID is allocated. */
export interface OwnerRecord extends Owner {
  attempt: number;
  createdAt: string;
}

/** `boot.json`: the sandbox's boot shell, whose process group is the sandbox. */
export interface BootRecord {
  pid: number;
  startedAt: number;
}

/** Fault injection for tests and drills: `<dataDir>/sandboxes/faults.json`, read on every operation. */
export interface Faults {
  /** The guest never reports an address (a VM that never finishes booting). */
  neverReady?: boolean;
  /** The VM boots but its agent-runner service is broken: nobody claims the bootstrap. */
  guestRunnerBroken?: boolean;
  /** Destroy fails (a backend outage during teardown). */
  failDestroy?: boolean;
  /** Attaching or detaching a workspace takes this long (a window to crash the worker in). */
  workspaceDelayMs?: number;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export const readOwner = (dir: string): Promise<OwnerRecord | undefined> => readJson(join(dir, 'owner.json'));

/** What ownership.ts judges: a folder without a readable mark is a VMID we must not touch. */
export async function foundSandbox(dir: string): Promise<FoundVm> {
  const record = await readOwner(dir);
  return { exists: record !== undefined || (await exists(dir)), markedBy: record?.workflowId };
}

/** The boot record while its shell is alive; undefined for a sandbox that is not running. */
export async function readBootRecord(dir: string): Promise<BootRecord | undefined> {
  const record = await readJson<BootRecord>(join(dir, 'boot.json'));
  return record && isAlive(record.pid) ? record : undefined;
}

export async function readFaults(root: string): Promise<Faults> {
  return (await readJson<Faults>(join(root, 'faults.json'))) ?? {};
}

/** Append-only record of real creations and destructions; lets operators and tests audit VM counts. */
export async function journal(root: string, op: 'clone' | 'destroy', vmid: number, jobId: string): Promise<void> {
  const line = JSON.stringify({ op, vmid, jobId, at: new Date().toISOString() }) + '\n';
  await fs.appendFile(join(root, 'journal.ndjson'), line);
}

export async function sandboxVmids(root: string): Promise<number[]> {
  await fs.mkdir(root, { recursive: true });
  return (await fs.readdir(root)).filter((e) => /^\d+$/.test(e)).map(Number);
}

export async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}
