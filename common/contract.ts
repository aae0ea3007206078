// The contract between workflows, activities, worker and CLI: names, messages, search attributes, shapes.
// Workflow code imports this module, so it must stay free of Node imports.
import { defineQuery, defineSignal, defineUpdate, type Sinks } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { AgentKind } from './agents';
import type { SecretsBundle } from './secrets';
import type { JobStatus, SandboxState } from './states';
import type { WorkspaceRef } from './workspace';

export const WORKFLOW_TASK_QUEUE = 'agentlab';
/** Host-bound activities (the backend) run on the task queue of the host that owns the sandbox. */
export const hostTaskQueue = (node: string): string => `agentlab-host-${node}`;

export const SearchAttributes = {
  state: defineSearchAttributeKey('AgentlabState', SearchAttributeType.KEYWORD),
  jobStatus: defineSearchAttributeKey('AgentlabJobStatus', SearchAttributeType.KEYWORD),
  profile: defineSearchAttributeKey('AgentlabProfile', SearchAttributeType.KEYWORD),
  vmid: defineSearchAttributeKey('AgentlabVmid', SearchAttributeType.INT),
  node: defineSearchAttributeKey('AgentlabNode', SearchAttributeType.KEYWORD),
  leaseExpiresAt: defineSearchAttributeKey('AgentlabLeaseExpiresAt', SearchAttributeType.DATETIME),
} as const;
export const ALL_SEARCH_ATTRIBUTES = Object.values(SearchAttributes);

/** What the operator asked for. Validated by `jobRequestSchema` (common/schemas.ts) at every boundary. */
export interface JobRequest {
  jobId: string;
  /** Absent for a sandbox without a job (`sandbox new`). */
  repo?: string;
  ref?: string;
  /** A local repository's `ref` as a commit, pinned by the CLI when it read the repository. */
  commit?: string;
  task?: string;
  profile: string;
  /** Lease length in ms; the profile's default when absent. */
  ttlMs?: number;
  keepalive?: boolean;
  agentCommand?: string;
  /** Pin the sandbox to a host; otherwise the profile's or the first worker's node. */
  node?: string;
  /** A persistent workspace to attach at /workspace; `wait: false` fails at once while another sandbox holds it. */
  workspace?: { name: string; wait?: boolean };
}

/** Where sandboxes run: the embedded namespace sandbox, a Proxmox VE node, or a QEMU VM on the worker's host. */
export const BACKEND_KINDS = ['local', 'proxmox', 'qemu'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/** The profile as the workflow needs it, resolved on a worker from its config. */
export interface ResolvedProfile {
  name: string;
  backend: BackendKind;
  node: string;
  ttlMs: number;
  maxTtlMs: number;
  keepalive: boolean;
  agentCommand?: string;
  /** The known agent behind agentCommand (absent for an operator's own command, and in older histories). */
  agentKind?: AgentKind;
  agentModel?: string;
  agentMaxRetries?: number;
  agentTimeoutMs: number;
  /** Absent in histories from before the watchdog: no watchdog then. */
  guestSilenceMs?: number;
  provisioningAttempts: number;
  bootTimeoutMs: number;
  bootstrapTimeoutMs: number;
  /** Absent in histories from before it was configurable: 10 minutes. */
  bootstrapTokenTtlMs?: number;
  /** Name of the secrets bundle the guest API hands out at bootstrap; the content never enters Temporal. */
  secretsBundle?: string;
  teardownAttempts: number;
  cores: number;
  memoryMb: number;
  /** The boot disk's size in GiB (proxmox and qemu; absent: the template's or image's, and in older histories). */
  diskGb?: number;
  templateVmid?: number;
  /** A parked sandbox continues as new past this many history events; absent in older histories. */
  continueAsNewAfterEvents?: number;
  /** Operators' OpenSSH public keys for the guest's user (proxmox, through cloud-init); public, never a secret. */
  sshAuthorizedKeys?: string[];
}

export interface Owner {
  jobId: string;
  workflowId: string;
}

export interface TimelineEntry {
  state: SandboxState;
  at: number;
  note?: string;
  /**
   * Set on an entry that records a Signal the rules refused (the state did not change; `note` says why): a
   * Signal has no answer, so this is where its sender (`sandbox show`, the Web UI) sees what became of it.
   */
  signal?: string;
  /** Set on an entry that records a person getting into the sandbox (`sandbox shell`, `sandbox ssh`). */
  access?: AccessRequest;
}

/** How a person gets into a sandbox: `sandbox shell` (local backend, its namespaces) or `sandbox ssh` (Proxmox). */
export const ACCESS_KINDS = ['shell', 'ssh'] as const;
export type AccessKind = (typeof ACCESS_KINDS)[number];

/** Who asks to get in, as the CLI knows it: recorded on the timeline before they enter. */
export interface AccessRequest {
  kind: AccessKind;
  /** The OS user running the CLI, and its machine's hostname. */
  user: string;
  host: string;
  /** The agentlab node the CLI's config names: `shell` works only on the sandbox's own host. */
  node: string;
}

/** Where to go once the access is recorded. */
export interface AccessGrant {
  vmid: number;
  node: string;
  backend: BackendKind;
  address?: string;
}

export interface JobResult {
  status: Extract<JobStatus, 'COMPLETED' | 'FAILED' | 'TIMEOUT'>;
  exitCode: number | null;
  message: string;
}

/** What `describe` returns: everything the CLI shows. Never a secret. */
export interface JobDescription {
  jobId: string;
  state: SandboxState;
  jobStatus: JobStatus;
  hasJob: boolean;
  profile: string;
  node?: string;
  vmid?: number;
  address?: string;
  leaseExpiresAt?: number;
  keepalive: boolean;
  repo?: string;
  ref?: string;
  commit?: string;
  exitCode?: number | null;
  message?: string;
  provisioningAttempt: number;
  /** The `clean` snapshot taken after first boot exists: `revert` can roll back to it. */
  cleanSnapshot: boolean;
  /** Why the clean snapshot could not be taken (not fatal: the sandbox works, revert does not). */
  cleanSnapshotError?: string;
  timeline: TimelineEntry[];
  /** How many times this sandbox's workflow continued as new (its history was handed to a fresh run). */
  continuedRuns?: number;
  /** User snapshots, oldest first (`sandbox snapshot save`). */
  snapshots: SnapshotRecord[];
  /** The profile's backend, once resolved (absent before, and from workers that predate access). */
  backend?: BackendKind;
  /** The persistent workspace the request names, and whether this sandbox holds it now. */
  workspace?: { name: string; held: boolean };
}

/**
 * What a parked sandbox's run hands to the next when its history grows large (continue-as-new): everything the
 * workflow knows that Temporal does not already carry (the request, memo and search attributes). Only hashes
 * of credentials, never a secret.
 */
export interface SandboxHandOver {
  profile: ResolvedProfile;
  job: JobStateSnapshot;
  /** VMIDs this workflow created and has not destroyed: the next run's teardown owns them. */
  created: number[];
  bootstrap?: { tokenHash: string; issuedAt: number };
  claimedCredentialHash: string | null;
  result?: JobResult;
  /** Runs of this workflow before the next one (1 for the first hand-over). */
  runs: number;
  /** The node whose admission slot this sandbox holds; absent in hand-overs from before admission. */
  admission?: { node: string };
  /** The persistent workspace attached to this sandbox. */
  workspace?: WorkspaceRef;
}

export interface JobStateSnapshot {
  state: SandboxState;
  jobStatus: JobStatus;
  timeline: TimelineEntry[];
  vmid?: number;
  address?: string;
  node?: string;
  leaseExpiresAt?: number;
  keepalive: boolean;
  provisioningAttempt: number;
  cleanSnapshot: boolean;
  cleanSnapshotError?: string;
  exitCode?: number | null;
  message?: string;
  /** Absent in hand-overs from before user snapshots existed. */
  snapshots?: SnapshotRecord[];
}

export interface JobOutcome {
  jobId: string;
  status: JobStatus;
  state: SandboxState;
  vmid?: number;
  exitCode?: number | null;
  message?: string;
}

export interface ClaimBootstrapRequest {
  tokenHash: string;
  runnerCredentialHash: string;
}

export interface ClaimBootstrapResponse {
  job: null | {
    jobId: string;
    repo: string;
    ref: string;
    /** Set for a local repository: the runner checks out this commit of the copy its host made. */
    commit?: string;
    task: string;
    agentCommand: string;
    /** Set when agentCommand is a known agent's: the runner prepares its config and reports its usage. */
    agentKind?: AgentKind;
    agentModel?: string;
    agentMaxRetries?: number;
    timeoutSeconds: number;
  };
  /** Only the bundle's name: the guest API decrypts it on the host and hands the content to the guest. */
  secretsBundle?: string;
}

/**
 * The bootstrap file the backend leaves for the guest runner (cloud-init's /etc/agentlab/bootstrap.json, the
 * local backend's cloud-init folder). The guest runner reads it (guest/runner.ts `claim`).
 */
export interface GuestBootstrap {
  controllerUrl: string;
  jobId: string;
  vmid: number;
  /** One use, within provisioning.bootstrapTokenTtl: the guest trades it for its job (claimBootstrap). */
  token: string;
  /** Local backend: a plain http git server on the sandbox's own loopback is allowed (development and tests). */
  allowLoopbackHttp?: boolean;
  /** The Proxmox simulator's guests: repositories on the host may be cloned. */
  allowLocalRepos?: boolean;
  /** Where the host's copy of a local repository is, as the guest sees it. */
  localRepo?: string;
  /** Where the persistent workspace is mounted, when the sandbox has one. */
  workspace?: string;
}

/** What a guest receives at bootstrap: the bundle's content, shaped for the runner. */
export type GuestSecrets = Omit<SecretsBundle, 'version'>;

/** The guest API's answer to `POST /v1/bootstrap` (worker/guest-api.ts), as the guest runner reads it. */
export interface GuestClaimResponse {
  runnerCredential: string;
  job: ClaimBootstrapResponse['job'];
  secrets: GuestSecrets | null;
}

export const describeQuery = defineQuery<JobDescription>('describe');
/** The guest API checks runner credentials against this hash; a hash is not a secret. */
export const runnerCredentialHashQuery = defineQuery<string | null>('runnerCredentialHash');
export const claimBootstrapUpdate = defineUpdate<ClaimBootstrapResponse, [ClaimBootstrapRequest]>('claimBootstrap');
export const renewLeaseUpdate = defineUpdate<{ leaseExpiresAt: number }, [{ ttlMs: number }]>('renewLease');
export const destroyUpdate = defineUpdate<{ state: SandboxState }, [{ force: boolean; reason?: string }]>('destroy');
/** What the destroy Signals carry: `temporal workflow signal --name destroy --input '{"force":false,"reason":"…"}'`. */
export interface DestroySignalInput {
  force?: boolean;
  reason?: string;
}
/** Fire-and-forget destroy; accepted even while no worker runs. Same rules as the Update. */
export const destroySignal = defineSignal<[DestroySignalInput]>('destroyRequested');
/**
 * The same, under the Update's own name: what an operator types in the Web UI's "Send a Signal" dialog or
 * `temporal workflow signal --name destroy`. Signals and Updates are separate handler sets, so one name serves both.
 */
export const destroyByNameSignal = defineSignal<[DestroySignalInput]>('destroy');
/** What the renew Signal carries: `{"ttl": "2h"}` (a duration, as `--ttl` takes it). */
export interface RenewLeaseSignalInput {
  ttl?: string;
}
/** Renew as a Signal (Web UI, `temporal workflow signal --name renewLease`); same rules as the Update of that name. */
export const renewLeaseSignal = defineSignal<[RenewLeaseSignalInput]>('renewLease');
export const stopUpdate = defineUpdate<{ state: SandboxState }, []>('stop');
export const startUpdate = defineUpdate<{ state: SandboxState }, []>('start');
/** Stop → roll back to the `clean` snapshot → STOPPED → with `restart`, boot as `start` does. */
export const revertUpdate = defineUpdate<{ state: SandboxState }, [{ force: boolean; restart: boolean }]>('revert');
/** Saves a user snapshot of the sandbox's disks (STOPPED, or with `force` a live VM). */
export const snapshotUpdate = defineUpdate<{ snapshot: SnapshotRecord }, [{ name: string; force: boolean }]>(
  'snapshot',
);
/** Rolls the sandbox back to one of its user snapshots; like revert, it is STOPPED after, or booted with `restart`. */
export const restoreUpdate = defineUpdate<
  { state: SandboxState },
  [{ name: string; force: boolean; restart: boolean }]
>('restore');
/** Records a person getting in (shell or ssh) on the timeline; refused, with the reason, where they may not. */
export const recordAccessUpdate = defineUpdate<AccessGrant, [AccessRequest]>('recordAccess');
export const reportResultSignal = defineSignal<[JobResult]>('reportResult');

export const MEMO_TASK_SUMMARY_LENGTH = 120;
export { CLEAN_SNAPSHOT } from './snapshot-names';

export interface SnapshotRecord {
  name: string;
  at: number;
  /** The sandbox's state when it was taken (a live one only with --force). */
  state: SandboxState;
}

/** Failure types the activities raise and the workflow's retry policies read: one list for both sides. */
export const PERMANENT_ERROR_TYPES = ['PermanentBackendError', 'InvalidProfile'];
/** The guest never came up: retry provisioning with a fresh VM, not the same activity. */
export const GUEST_NOT_READY = 'GuestNotReady';
/**
 * A clone found its VMID taken (the Proxmox backend's VmidConflictError): retrying the same clone cannot
 * help, so it fails at once and the provisioning loop allocates a new VMID (it is not permanent).
 * Set explicitly as the failure type: by default the SDK takes the class name.
 */
export const VMID_CONFLICT = 'VmidConflict';

/**
 * Metrics the workflow reports through a sink (not replayed): the worker turns them into the
 * Prometheus series named after the original system's, for dashboard continuity.
 */
export interface AgentlabSinks extends Sinks {
  metrics: {
    transition(from: SandboxState, to: SandboxState): void;
    ready(provisionSeconds: number, timeToReadySeconds: number): void;
    jobFinished(status: JobStatus, durationSeconds: number): void;
  };
}

/** What one reconcile pass did on one host's backend: VMs of ours whose job workflow has ended are orphans. */
export interface ReconcileReport {
  node: string;
  backend: ResolvedProfile['backend'];
  checked: number;
  /** Orphans destroyed (their workflow is closed or gone). */
  destroyed: number[];
  /** VMs whose workflow is still open: they are that workflow's to destroy. */
  kept: number[];
  failed: { vmid: number; reason: string }[];
}

/** Per host: the Schedule that runs `reconcileWorkflow` for that node's backends. */
export const reconcileScheduleId = (node: string): string => `agentlab-reconcile-${node}`;
