// Where a finished job's wall time went, from its Temporal history: backend activities, waits in task
// queues, and what is left once the agent's own time is taken out (the orchestration overhead).
import type { WorkflowHandle } from '@temporalio/client';
import { eventTimeMs as at } from './job-steps';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** The host activities that drive the backend (a VM's clone, boot, snapshot, teardown). */
const BACKEND_ACTIVITIES = new Set([
  'allocateVmid',
  'cloneVm',
  'configureVm',
  'startVm',
  'waitForGuestAddress',
  'snapshotVm',
  'deleteBootstrapSnippet',
  'stopVm',
  'destroyVm',
]);

export interface JobTimes {
  wallMs: number;
  /** Backend activities, from started to completed (their own work, retries included). */
  backendMs: number;
  /** Every activity and workflow task once admitted, from scheduled to started: time spent waiting for a worker. */
  queueWaitMs: number;
  agentMs: number;
  /**
   * From the start to the host's slot: the job could not run before it, whatever the orchestration did (at 500
   * jobs most of it is the line; the start's own tasks are in it too). Not counted as overhead.
   */
  admissionWaitMs: number;
  /** Wall minus backend, agent and admission: Temporal, the worker and the guest runner around the agent. */
  overheadMs: number;
  events: number;
}

/**
 * `waitedForCapacity`: the jobs outnumbered the host's slots, so the time before a slot is the line's, not the
 * orchestration's. When every job is admitted at once, the admission round trip is orchestration and stays in.
 */
export function jobTimes(history: History, agentMs: number, waitedForCapacity: boolean): JobTimes {
  const events = history.events ?? [];
  const scheduledAt = new Map<string, { at: number; backend: boolean }>();
  let backendMs = 0;
  let queueWaitMs = 0;
  /** The part of queueWaitMs before the slot was granted. */
  let queueWaitBeforeSlotMs = 0;
  let admissionWaitMs = 0;
  for (const event of events) {
    if (event.workflowExecutionSignaledEventAttributes?.signalName === 'slotGranted') {
      admissionWaitMs = at(event) - at(events[0]!);
      queueWaitBeforeSlotMs = queueWaitMs;
    }
    const id = String(event.eventId);
    const activity = event.activityTaskScheduledEventAttributes;
    if (activity)
      scheduledAt.set(id, { at: at(event), backend: BACKEND_ACTIVITIES.has(activity.activityType?.name ?? '') });
    if (event.workflowTaskScheduledEventAttributes) scheduledAt.set(id, { at: at(event), backend: false });
    const started = event.activityTaskStartedEventAttributes ?? event.workflowTaskStartedEventAttributes;
    const scheduled = started && scheduledAt.get(String(started.scheduledEventId));
    if (scheduled) {
      queueWaitMs += at(event) - scheduled.at;
      if (event.activityTaskStartedEventAttributes && scheduled.backend)
        scheduledAt.set(`started-${started.scheduledEventId}`, { at: at(event), backend: true });
    }
    const done =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes;
    const begun = done && scheduledAt.get(`started-${done.scheduledEventId}`);
    if (begun) backendMs += at(event) - begun.at;
  }
  const wallMs = events.length > 1 ? at(events[events.length - 1]!) - at(events[0]!) : 0;
  return {
    wallMs,
    backendMs,
    queueWaitMs: waitedForCapacity ? queueWaitMs - queueWaitBeforeSlotMs : queueWaitMs,
    agentMs,
    admissionWaitMs,
    overheadMs: wallMs - backendMs - agentMs - (waitedForCapacity ? admissionWaitMs : 0),
    events: events.length,
  };
}
