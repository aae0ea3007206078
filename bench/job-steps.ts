// Per-step latencies of a finished jobWorkflow, read from its Temporal history (for bench-proxmox).
import type { WorkflowHandle } from '@temporalio/client';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

export const STEPS = ['allocate', 'clone', 'configure', 'start', 'guest ready', 'bootstrap claim', 'total'] as const;
export type Step = (typeof STEPS)[number];

const ACTIVITY_STEPS: Record<string, Step> = {
  allocateVmid: 'allocate',
  cloneVm: 'clone',
  configureVm: 'configure',
  startVm: 'start',
  waitForGuestAddress: 'guest ready',
};

/**
 * Activity steps: scheduled → completed (queueing, semaphore waits and retries included), summed over
 * provisioning attempts. Bootstrap claim: the VM's start completed → the claimBootstrap Update accepted,
 * i.e. boot, cloud-init and the claim; measured from power-on like guest ready, because the runner often
 * claims before the guest agent's address is polled. Total: workflow started → closed.
 */
export function jobSteps(history: History): Partial<Record<Step, number>> {
  const events = history.events ?? [];
  const scheduled = new Map<string, { step: Step; at: number }>();
  const steps: Partial<Record<Step, number>> = {};
  let poweredOnAt: number | undefined;
  for (const event of events) {
    const s = event.activityTaskScheduledEventAttributes;
    const step = s && ACTIVITY_STEPS[s.activityType?.name ?? ''];
    if (step) scheduled.set(String(event.eventId), { step, at: eventTimeMs(event) });
    const done = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    const begun = done && scheduled.get(String(done.scheduledEventId));
    if (begun) {
      steps[begun.step] = (steps[begun.step] ?? 0) + eventTimeMs(event) - begun.at;
      if (begun.step === 'start' && event.activityTaskCompletedEventAttributes) poweredOnAt = eventTimeMs(event);
    }
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted?.acceptedRequest?.input?.name === 'claimBootstrap') steps['bootstrap claim'] = eventTimeMs(event);
  }
  const claimAt = steps['bootstrap claim'];
  if (claimAt !== undefined && poweredOnAt !== undefined) steps['bootstrap claim'] = claimAt - poweredOnAt;
  else delete steps['bootstrap claim'];
  if (events.length > 1) steps.total = eventTimeMs(events[events.length - 1]!) - eventTimeMs(events[0]!);
  return steps;
}

/** An event's time in ms (protobuf seconds may be a Long). */
export function eventTimeMs(event: HistoryEvent): number {
  const seconds = event.eventTime?.seconds ?? 0;
  return (typeof seconds === 'number' ? seconds : seconds.toNumber()) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
}
