// Admission by capacity: the messages between job workflows and their host's admission workflow.
// Workflow code imports this module, so it must stay free of Node imports.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** One admission workflow per host: it owns that host's line and its slots. */
export const admissionWorkflowId = (node: string): string => `agentlab-admission-${node}`;

/** What a host may hold at once: its cores and memory, overcommit factors already applied. */
export interface Capacity {
  cores: number;
  memoryMb: number;
}

/** A job's claim on a host: the size of its sandbox, as its profile declares it. */
export interface SlotRequest extends Capacity {
  /** The job's workflow id: the admission workflow signals it, and it identifies the slot. */
  holder: string;
}

export interface LineEntry extends SlotRequest {
  /** When the request reached the line (queued) or the slot was granted (holding). */
  since: number;
}

/** What one run of the admission workflow carries to the next (continue-as-new). */
export interface AdmissionState {
  holding: LineEntry[];
  waiting: LineEntry[];
}

export interface AdmissionInput {
  node: string;
  capacity: Capacity;
  /** While jobs wait, slots of workflows that have ended without releasing are reclaimed this often. */
  reclaimIntervalMs: number;
  continueAsNewAfterEvents: number;
  carried?: AdmissionState;
}

/** The line as `job list`, `job show` and the Web UI's query tab show it; `waiting[0]` is place 1. */
export interface AdmissionView {
  node: string;
  capacity: Capacity;
  used: Capacity;
  holding: LineEntry[];
  waiting: LineEntry[];
}

export const requestSlotSignal = defineSignal<[SlotRequest]>('requestSlot');
/** Sent by a job when its sandbox is gone (or it left the line); unknown holders are ignored. */
export const releaseSlotSignal = defineSignal<[{ holder: string }]>('releaseSlot');
/** Sent by the host's worker at start: its configured capacity may have changed. */
export const setCapacitySignal = defineSignal<[Capacity]>('setCapacity');
/** Sent by the admission workflow to a job whose turn has come. */
export const slotGrantedSignal = defineSignal<[]>('slotGranted');
export const admissionLineQuery = defineQuery<AdmissionView>('line');

/** 1-based place of a waiting job, or undefined when it is not waiting. */
export function placeInLine(view: AdmissionView, holder: string): number | undefined {
  const index = view.waiting.findIndex((entry) => entry.holder === holder);
  return index < 0 ? undefined : index + 1;
}

/** Whether a request could ever be admitted: one larger than the whole host would wait forever. */
export function exceedsCapacity(request: Capacity, capacity: Capacity): boolean {
  return request.cores > capacity.cores || request.memoryMb > capacity.memoryMb;
}
