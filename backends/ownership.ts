// The one ownership rule of every backend: a VM is an owner's when its owner mark names that owner's workflow.
// Each backend reads its own mark (owner.json, a Proxmox description); only this decides what it means.
import type { Owner } from '../common/contract';
import { PermanentBackendError } from './contract';

/** What a backend found at a VMID: whether a VM is there, and the workflow its owner mark names (none: not ours). */
export interface FoundVm {
  exists: boolean;
  markedBy?: string;
}

export type Ownership = 'ours' | 'absent' | 'not-ours';

export function ownership(found: FoundVm, owner: Owner): Ownership {
  if (!found.exists) return 'absent';
  return found.markedBy === owner.workflowId ? 'ours' : 'not-ours';
}

/**
 * Throws a PermanentBackendError unless the VM is this owner's, so a VM on a reused or colliding VMID (a
 * foreign one, or another job's) is never touched. `absentIsFine`: a VM already gone is no refusal (removing
 * what is left of one), for a call that touches nothing of another owner's when there is no VM.
 */
export function requireOwner(label: string, found: FoundVm, owner: Owner, { absentIsFine = false } = {}): void {
  const state = ownership(found, owner);
  if (state === 'absent' && !absentIsFine) throw new PermanentBackendError(`${label} does not exist`);
  if (state !== 'not-ours') return;
  throw new PermanentBackendError(
    found.markedBy === undefined
      ? `${label} is not an agentlab sandbox; refusing to touch it`
      : `${label} belongs to ${found.markedBy}, not ${owner.workflowId}; refusing to touch it`,
  );
}
