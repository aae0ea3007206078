// The one interface every sandbox backend implements; the workflow never knows which one it drives.
import type { BackendKind, GuestBootstrap, Owner, ResolvedProfile } from '../common/contract';
import type { WorkspaceRef } from '../common/workspace';

export interface OwnedVm {
  vmid: number;
  jobId: string;
  workflowId: string;
  running: boolean;
}

export type DestroyOutcome = 'destroyed' | 'absent' | 'not-ours';

/** A VM and the workflow that must own it: every VM method checks the VM's owner mark against it (ownership.ts). */
export interface VmRef {
  vmid: number;
  owner: Owner;
}

/** What the guest boots with: the bootstrap the configure activity minted (common/bootstrap.ts), which the backend only writes. */
export interface GuestBoot {
  bootstrap: GuestBootstrap;
  /** A repository on this host: the backend gives the guest a copy of this commit, and nothing else of the host. */
  localRepo?: { path: string; commit: string };
}

/** What a backend may show of the job on the VM it clones (Proxmox: its description). Never a secret. */
export interface CloneJob {
  repo?: string;
}

export interface SandboxBackend {
  readonly kind: BackendKind;
  /** A VMID from our range, never one in use. Idempotent per (jobId, attempt). */
  allocate(owner: Owner, attempt: number): Promise<number>;
  /**
   * Creates the VM (or reuses it if this owner already created it) and marks it as ours.
   * `attempt`: the provisioning attempt the VMID was allocated for (absent in histories from before it was passed).
   */
  clone(vm: VmRef, profile: ResolvedProfile, attempt?: number, job?: CloneJob): Promise<void>;
  /**
   * Writes the bootstrap where the guest reads it at first boot (cloud-init data, the sandbox's folder) and
   * sizes the VM. The token is never an activity argument or result: those are workflow history.
   */
  configure(vm: VmRef, profile: ResolvedProfile, guest: GuestBoot): Promise<void>;
  start(vm: VmRef): Promise<void>;
  /** undefined while the guest is still booting. */
  guestAddress(vm: VmRef): Promise<string | undefined>;
  stop(vm: VmRef): Promise<void>;
  /** Removes the bootstrap (the token is spent); a VM already gone is success. */
  deleteBootstrap(vm: VmRef): Promise<void>;
  /** Destroys only a VM that carries this owner's mark; a missing VM is success. */
  destroy(vm: VmRef): Promise<DestroyOutcome>;
  listOwned(): Promise<OwnedVm[]>;
  /** A disk-only snapshot named `name`. A snapshot of that name already there is success: it is a retried call's. */
  snapshot(vm: VmRef, name: string): Promise<void>;
  /** Puts the VM's disks back to snapshot `name`, leaving it stopped. */
  rollback(vm: VmRef, name: string): Promise<void>;
  /** Persistent workspaces (docs/workspaces.md); a backend without them leaves these out. */
  workspaces?: WorkspaceStorage;
}

/** The backends a worker runs, by kind (backends/index.ts creates them). */
export type Backends = Partial<Record<BackendKind, SandboxBackend>>;

/**
 * A workspace's storage on its node. Every call is idempotent (activities retry after a crash), and the
 * storage carries the workspace workflow's mark: nothing else deletes it, and it deletes nothing else.
 */
export interface WorkspaceStorage {
  create(workspace: WorkspaceRef): Promise<void>;
  /** Deletes the storage (a missing one is success); never while a VM has it attached. */
  delete(workspace: WorkspaceRef): Promise<void>;
  /** Attaches it to a VM of this owner's (after the clone, before the first boot). */
  attach(vm: VmRef, workspace: WorkspaceRef): Promise<void>;
  /** Detaches it from the VM, before the VM is destroyed; a VM without it (or gone) is success. */
  detach(vm: VmRef, workspace: WorkspaceRef): Promise<void>;
}

/** A failure retrying cannot fix (missing template, backend not available here). */
export class PermanentBackendError extends Error {
  override name = 'PermanentBackendError';
}
