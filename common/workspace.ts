// Persistent workspaces: one long-lived workflow per workspace owns its state, size, node, holder and history;
// job workflows ask it for the attachment. Workflow code imports this module: no Node imports.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { BackendKind } from './contract';

export const workspaceWorkflowId = (name: string): string => `agentlab-workspace-${name}`;

/** DNS-label-like: it becomes a directory name (local) and part of a volume name (Proxmox). */
export const WORKSPACE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const WORKSPACE_NAME_RULE = 'expected 1-40 lowercase letters, digits or "-", starting with a letter or digit';

/** Where the guest sees its workspace. */
export const WORKSPACE_MOUNT = '/workspace';

export const WORKSPACE_STATUSES = ['CREATING', 'AVAILABLE', 'ATTACHED', 'DESTROYING', 'DESTROYED', 'FAILED'] as const;
export type WorkspaceStatus = (typeof WORKSPACE_STATUSES)[number];

/** What a sandbox needs to attach the workspace: granted to its job by the workspace workflow. */
export interface WorkspaceRef {
  name: string;
  backend: BackendKind;
  node: string;
  sizeGb: number;
  /** The workspace workflow's id: the owner mark on its storage. */
  workflowId: string;
}

export interface WorkspaceHolder {
  /** The job's workflow id (it signals, and is signalled). */
  workflowId: string;
  jobId: string;
  since: number;
}

/** One sandbox's use of the workspace: from the grant to the release after its VM was destroyed. */
export interface WorkspaceAttachment {
  jobId: string;
  workflowId: string;
  vmid?: number;
  grantedAt: number;
  releasedAt?: number;
  /** Why it ended other than by the job's own release (its workflow ended without one). */
  note?: string;
}

/** What one run of the workspace workflow carries to the next (continue-as-new). */
export interface WorkspaceCarried {
  status: WorkspaceStatus;
  holder?: WorkspaceHolder;
  waiting: WorkspaceHolder[];
  attachments: WorkspaceAttachment[];
}

export interface WorkspaceInput {
  name: string;
  backend: BackendKind;
  /** The profile whose backend (and on Proxmox, storage) holds the volume. */
  profile: string;
  node: string;
  sizeGb: number;
  createdAt: number;
  reclaimIntervalMs: number;
  continueAsNewAfterEvents: number;
  carried?: WorkspaceCarried;
}

/** What `workspace show` and the Web UI see: the workspace as created, its book, and its last error. */
export interface WorkspaceDescription
  extends WorkspaceCarried, Pick<WorkspaceInput, 'name' | 'backend' | 'profile' | 'node' | 'sizeGb' | 'createdAt'> {
  error?: string;
}

/** From a job: attach me (`wait: false`: refuse at once when someone else holds it). Repeats are harmless. */
export const requestWorkspaceSignal =
  defineSignal<[{ holder: string; jobId: string; wait: boolean }]>('requestAttachment');
/** From a job: its sandbox is VMID `vmid` (recorded in the attachment history). */
export const workspaceAttachedSignal = defineSignal<[{ holder: string; vmid: number }]>('attached');
/** From a job once its sandbox is gone (or it gave up waiting); unknown holders are ignored. */
export const releaseWorkspaceSignal = defineSignal<[{ holder: string }]>('releaseAttachment');
/** To a job: the workspace is its own until it releases it. */
export const workspaceGrantedSignal = defineSignal<[WorkspaceRef]>('workspaceGranted');
/** To a job: no attachment (held by another with `wait: false`, or the workspace is going away). */
export const workspaceRefusedSignal = defineSignal<[{ name: string; reason: string }]>('workspaceRefused');
export const describeWorkspaceQuery = defineQuery<WorkspaceDescription>('describe');
/** Deletes the storage and ends the workflow; refused while a sandbox holds or waits for the workspace. */
export const destroyWorkspaceUpdate = defineUpdate<{ status: WorkspaceStatus }, [{ reason?: string }]>('destroy');

/** The line `--no-wait` and `workspace show` print about a holder. */
export const heldByText = (name: string, holder: WorkspaceHolder): string =>
  `workspace ${name} is attached to the sandbox of job ${holder.jobId}`;
