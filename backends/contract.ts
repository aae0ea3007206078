// The one interface every sandbox backend implements; the workflow never knows which one it drives.
import type { BackendKind, Owner, ResolvedProfile } from '../common/contract';
import type { WorkspaceRef } from '../common/workspace';

export interface OwnedVm {
  vmid: number;
  jobId: string;
  workflowId: string;
  running: boolean;
}

export type DestroyOutcome = 'destroyed' | 'absent' | 'not-ours';

/** What the guest needs to know of its job at boot, beside the token the backend mints. */
export interface GuestJob {
  jobId: string;
  controllerUrl: string;
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
  clone(vmid: number, profile: ResolvedProfile, owner: Owner, attempt?: number, job?: CloneJob): Promise<void>;
  /**
   * Mints the one-time bootstrap token and writes it into the VM's cloud-init data; returns only its
   * hash. The token itself is never an activity argument or result: those are workflow history.
   */
  configure(vmid: number, profile: ResolvedProfile, job: GuestJob): Promise<{ tokenHash: string }>;
  start(vmid: number): Promise<void>;
  /** undefined while the guest is still booting. */
  guestAddress(vmid: number): Promise<string | undefined>;
  stop(vmid: number): Promise<void>;
  /** Removes the cloud-init snippet that carries the (now spent) bootstrap token. */
  deleteBootstrap(vmid: number): Promise<void>;
  /** Destroys only a VM that carries this owner's mark; a missing VM is success. */
  destroy(vmid: number, owner: Owner): Promise<DestroyOutcome>;
  listOwned(): Promise<OwnedVm[]>;
  /**
   * A disk-only snapshot named `name` of a VM carrying this owner's mark (else PermanentBackendError).
   * A snapshot of that name already there is success: it is a retried call's.
   */
  snapshot(vmid: number, name: string, owner: Owner): Promise<void>;
  /** Puts the VM's disks back to snapshot `name`, leaving it stopped; only a VM carrying this owner's mark. */
  rollback(vmid: number, name: string, owner: Owner): Promise<void>;
  /** Persistent workspaces (docs/workspaces.md); a backend without them leaves these out. */
  workspaces?: WorkspaceStorage;
}

/**
 * A workspace's storage on its node. Every call is idempotent (activities retry after a crash), and the
 * storage carries the workspace workflow's mark: nothing else deletes it, and it deletes nothing else.
 */
export interface WorkspaceStorage {
  create(workspace: WorkspaceRef): Promise<void>;
  /** Deletes the storage (a missing one is success); never while a VM has it attached. */
  delete(workspace: WorkspaceRef): Promise<void>;
  /** Attaches it to a VM of this owner's (after the clone, before the first boot). */
  attach(vmid: number, owner: Owner, workspace: WorkspaceRef): Promise<void>;
  /** Detaches it from the VM, before the VM is destroyed; a VM without it (or gone) is success. */
  detach(vmid: number, owner: Owner, workspace: WorkspaceRef): Promise<void>;
}

/** A failure retrying cannot fix (missing template, backend not available here). */
export class PermanentBackendError extends Error {
  override name = 'PermanentBackendError';
}
