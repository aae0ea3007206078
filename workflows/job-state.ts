// The job's observable state: every change is mirrored into search attributes so the Web UI and `list` see it.
import { proxySinks, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  SearchAttributes,
  type AccessRequest,
  type AgentlabSinks,
  type JobDescription,
  type JobOutcome,
  type JobRequest,
  type JobStateSnapshot,
  type SnapshotRecord,
  type ResolvedProfile,
  type TimelineEntry,
} from '../common/contract';
import { currentDetails } from '../common/job-metadata';
import { accessNote } from '../common/operator-access';
import { isTerminalJobStatus, type JobStatus, type SandboxState } from '../common/states';

const { metrics } = proxySinks<AgentlabSinks>();
const seconds = (ms: number): number => ms / 1000;
/** Timeline entries a continued run keeps after the provisioning ones: a long-lived sandbox's stops and starts. */
const TIMELINE_TAIL = 100;

export class JobState {
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

  constructor(
    private readonly request: JobRequest,
    carried?: JobStateSnapshot,
  ) {
    this.hasJob = request.task !== undefined;
    this.timeline = [{ state: 'REQUESTED', at: workflowInfo().startTime.getTime() }];
    // A continued run picks up where the last one stopped; its search attributes came along with it.
    if (carried) Object.assign(this, carried);
    this.refreshDetails();
  }

  /** Everything the next run needs; the timeline keeps the way to READY and the latest entries. */
  snapshot(): JobStateSnapshot {
    const firstReady = this.timeline.findIndex((t) => t.state === 'READY') + 1;
    const head = this.timeline.slice(0, firstReady);
    const tail = this.timeline.slice(Math.max(firstReady, this.timeline.length - TIMELINE_TAIL));
    return {
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
