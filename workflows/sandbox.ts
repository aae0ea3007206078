// Everything one run of a sandbox's workflow knows, in one object: the observable state (every change mirrored
// into search attributes so the Web UI and `list` see it) and the rest the handlers and the main flow share.
// A continued run is built from `handOver()`, so continue-as-new carries every field by construction.
import {
  patched,
  proxySinks,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type CancellationScope,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  SearchAttributes,
  type AccessRequest,
  type AgentlabSinks,
  type JobDescription,
  type JobOutcome,
  type JobRequest,
  type JobResult,
  type JobStateSnapshot,
  type Owner,
  type SandboxHandOver,
  type SnapshotRecord,
  type ResolvedProfile,
  type TimelineEntry,
} from '../common/contract';
import { currentDetails } from '../common/job-metadata';
import { accessNote } from '../common/operator-access';
import type { Activities } from '../activities';
import { isTerminalJobStatus, type JobStatus, type SandboxState } from '../common/states';
import { AdmissionTicket } from './admission-ticket';
import { WorkspaceClaim } from './workspace-claim';

const { metrics } = proxySinks<AgentlabSinks>();
const seconds = (ms: number): number => ms / 1000;
/** Timeline entries a continued run keeps after the provisioning ones: a long-lived sandbox's stops and starts. */
const TIMELINE_TAIL = 100;

/** What the handlers, provisioning and teardown share with the main flow: the request, the sandbox, and how to act. */
export interface Run {
  readonly request: JobRequest;
  readonly sandbox: Sandbox;
  /** Power and disk operations run in it: a lease expiry or destroy cancels it, and them with it. */
  readonly jobScope: CancellationScope;
  /** The profile's host activities: set once the profile is resolved (from the start in a continued run). */
  host: Activities | undefined;
}

/** Every key of T present (optional ones possibly undefined): a field added to T and not carried fails to compile. */
type Complete<T> = { [K in keyof Required<T>]: T[K] };

/** A revert, restore or snapshot under way: the other power and disk operations are refused meanwhile. */
export type BusyOperation = 'revert' | 'restore' | 'snapshot';

export class Sandbox {
  state: SandboxState = 'REQUESTED';
  jobStatus: JobStatus = 'QUEUED';
  readonly hasJob: boolean;
  readonly timeline: TimelineEntry[];
  vmid?: number;
  address?: string;
  node?: string;
  leaseExpiresAt?: number;
  keepalive = false;
  provisioningAttempt = 0;
  cleanSnapshot = false;
  cleanSnapshotError?: string;
  snapshots: SnapshotRecord[] = [];
  exitCode?: number | null;
  message?: string;

  /** Runs of this workflow before this one (continue-as-new), shown by `describe`. */
  continuedRuns = 0;

  // ---- carried to a continued run beside the job state ----
  profile?: ResolvedProfile;
  bootstrap?: SandboxHandOver['bootstrap'];
  /** The runner that claimed the bootstrap token; the guest API checks its credentials against this. */
  claimedCredentialHash: string | null = null;
  result?: JobResult;
  /** VMIDs this workflow created (recorded right after a successful clone) and not yet destroyed. */
  readonly created: number[] = [];

  // ---- this run's only ----
  busy?: BusyOperation;
  destroyRequested = false;
  destroyReason?: string;
  forceDestroyRequested = false;
  mainFlowDone = false;
  /** Set when the main flow parks the sandbox for a fresh run instead of ending: no teardown then. */
  handingOver = false;

  readonly owner: Owner;
  readonly admission: AdmissionTicket;
  readonly workspace: WorkspaceClaim;

  constructor(
    private readonly request: JobRequest,
    carried?: SandboxHandOver,
  ) {
    this.hasJob = request.task !== undefined;
    this.timeline = [{ state: 'REQUESTED', at: workflowInfo().startTime.getTime() }];
    this.owner = { jobId: request.jobId, workflowId: workflowInfo().workflowId };
    // A continued run picks up where the last one stopped; its search attributes came along with it.
    if (carried) {
      Object.assign(this, carried.job);
      this.profile = carried.profile;
      this.bootstrap = carried.bootstrap;
      this.claimedCredentialHash = carried.claimedCredentialHash ?? null;
      this.result = carried.result;
      this.created.push(...carried.created);
    }
    this.refreshDetails();
    this.continuedRuns = carried?.runs ?? 0;
    // Their handlers are set here, before the sandbox's own (jobWorkflow's order since these existed).
    this.admission = new AdmissionTicket(this.owner.workflowId, carried?.admission);
    this.workspace = new WorkspaceClaim(
      this.owner.workflowId,
      request.jobId,
      request.workspace?.name,
      carried?.workspace,
    );
  }

  /** What the next run is started with (continue-as-new): everything above marked carried. */
  handOver(): SandboxHandOver {
    const workspace = this.workspace.ref;
    const whole: Complete<Omit<SandboxHandOver, 'workspace'>> = {
      profile: this.profile!,
      job: this.snapshot(),
      created: this.created,
      bootstrap: this.bootstrap,
      claimedCredentialHash: this.claimedCredentialHash,
      result: this.result,
      runs: this.continuedRuns + 1,
      admission: this.admission.handOver(),
    };
    return { ...whole, ...(workspace ? { workspace } : {}) };
  }

  /** The job state the next run needs; the timeline keeps the way to READY and the latest entries. */
  snapshot(): JobStateSnapshot {
    const firstReady = this.timeline.findIndex((t) => t.state === 'READY') + 1;
    const head = this.timeline.slice(0, firstReady);
    const tail = this.timeline.slice(Math.max(firstReady, this.timeline.length - TIMELINE_TAIL));
    const snapshot: Complete<JobStateSnapshot> = {
      state: this.state,
      jobStatus: this.jobStatus,
      timeline: [...head, ...tail],
      vmid: this.vmid,
      address: this.address,
      node: this.node,
      leaseExpiresAt: this.leaseExpiresAt,
      keepalive: this.keepalive,
      provisioningAttempt: this.provisioningAttempt,
      cleanSnapshot: this.cleanSnapshot,
      cleanSnapshotError: this.cleanSnapshotError,
      exitCode: this.exitCode,
      message: this.message,
      snapshots: this.snapshots,
    };
    return snapshot;
  }

  /** `reason`: what the operator gave, kept for the job's message (the first one, if several came). */
  requestDestroy(reason?: string): void {
    if (this.mainFlowDone)
      this.forceDestroyRequested = true; // teardown is waiting for an operator's --force
    else {
      if (!this.destroyRequested) this.destroyReason = reason;
      this.destroyRequested = true;
    }
  }

  /**
   * Powering off kills the agent: a job still running under it ends FAILED with the reason, instead of
   * RUNNING until the lease expires (the original system's jobs outlived their sandboxes).
   */
  endJobKilledByPowerOff(operation: 'stopped' | 'reverted' | 'restored to a snapshot'): void {
    if (!this.hasJob || this.claimedCredentialHash === null || this.result !== undefined) return;
    // Restore came later than both patches: no history of it predates them.
    if (operation === 'stopped' && !patched('power-off-ends-job')) return;
    if (operation === 'reverted' && !patched('revert-ends-job')) return;
    this.result = {
      status: 'FAILED',
      exitCode: null,
      message: `the sandbox was ${operation} while its job was running: the agent was killed`,
    };
  }

  transition(state: SandboxState, note?: string): void {
    if (this.state === 'DESTROYED') return; // terminal: a late handler must not resurrect it
    metrics.transition(this.state, state);
    this.state = state;
    this.timeline.push({ state, at: Date.now(), ...(note ? { note } : {}) });
    if (state === 'READY' && !this.timeline.slice(0, -1).some((t) => t.state === 'READY')) {
      const provisioningStarted = this.timeline.find((t) => t.state === 'PROVISIONING')?.at ?? Date.now();
      metrics.ready(seconds(Date.now() - provisioningStarted), seconds(Date.now() - this.timeline[0]!.at));
    }
    this.publish([{ key: SearchAttributes.state, value: state }]);
  }

  /** A Signal the rules refused: recorded with the reason, the state unchanged (no search attribute changes). */
  signalRefused(signal: string, reason: string): void {
    this.timeline.push({ state: this.state, at: Date.now(), note: `${signal} signal refused: ${reason}`, signal });
    this.refreshDetails();
  }

  /** A person got in (shell or ssh): who, from where, and when, the state unchanged. */
  accessed(request: AccessRequest): void {
    this.timeline.push({ state: this.state, at: Date.now(), note: accessNote(request), access: request });
    this.refreshDetails();
  }

  setJobStatus(status: JobStatus): void {
    if (isTerminalJobStatus(this.jobStatus)) return; // exactly one terminal status
    this.jobStatus = status;
    this.publish([{ key: SearchAttributes.jobStatus, value: status }]);
  }

  finish(status: JobStatus, message: string, exitCode?: number | null): void {
    if (isTerminalJobStatus(this.jobStatus)) return;
    this.message = message;
    if (exitCode !== undefined) this.exitCode = exitCode;
    this.setJobStatus(status);
    metrics.jobFinished(status, seconds(Date.now() - this.timeline[0]!.at));
  }

  setProfile(profile: ResolvedProfile, keepalive: boolean): void {
    this.node = profile.node;
    this.keepalive = keepalive;
    this.publish([{ key: SearchAttributes.node, value: profile.node }]);
  }

  setAddress(address: string): void {
    this.address = address;
    this.refreshDetails();
  }

  setVmid(vmid: number): void {
    this.vmid = vmid;
    this.publish([{ key: SearchAttributes.vmid, value: vmid }]);
  }

  setLease(expiresAt: number): void {
    this.leaseExpiresAt = expiresAt;
    this.publish([{ key: SearchAttributes.leaseExpiresAt, value: new Date(expiresAt) }]);
  }

  /** Every change that a search attribute mirrors is also the Web UI's current details. */
  private publish(pairs: SearchAttributeUpdatePair[]): void {
    upsertSearchAttributes(pairs);
    this.refreshDetails();
  }

  /** Only workflow state, no command: histories replay the same with or without it. */
  private refreshDetails(): void {
    setCurrentDetails(currentDetails(this.describe(), Date.now()));
  }

  describe(): JobDescription {
    return {
      jobId: this.request.jobId,
      state: this.state,
      jobStatus: this.jobStatus,
      hasJob: this.hasJob,
      profile: this.request.profile,
      node: this.node,
      vmid: this.vmid,
      address: this.address,
      leaseExpiresAt: this.leaseExpiresAt,
      keepalive: this.keepalive,
      repo: this.request.repo,
      ref: this.request.ref,
      ...(this.request.commit ? { commit: this.request.commit } : {}),
      exitCode: this.exitCode,
      message: this.message,
      provisioningAttempt: this.provisioningAttempt,
      cleanSnapshot: this.cleanSnapshot,
      ...(this.cleanSnapshotError ? { cleanSnapshotError: this.cleanSnapshotError } : {}),
      timeline: this.timeline,
      snapshots: this.snapshots,
      ...(this.continuedRuns ? { continuedRuns: this.continuedRuns } : {}),
    };
  }

  outcome(): JobOutcome {
    return {
      jobId: this.request.jobId,
      status: this.jobStatus,
      state: this.state,
      vmid: this.vmid,
      exitCode: this.exitCode,
      message: this.message,
    };
  }
}
