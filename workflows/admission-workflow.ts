// One long-running workflow per host (a semaphore): jobs ask it for a slot the size of their sandbox, it
// grants slots first come, first served while the host's capacity allows, and keeps the rest in line.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { AdmissionActivities } from '../activities/admission';
import {
  admissionLineQuery,
  releaseSlotSignal,
  requestSlotSignal,
  setCapacitySignal,
  slotGrantedSignal,
  type AdmissionInput,
} from '../common/admission';
import { AdmissionLine } from './admission-line';

const controlPlane = proxyActivities<AdmissionActivities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});

/** The Web UI's "current details" show this many of the waiting jobs (the `line` query has them all). */
const DETAILS_SHOWN = 20;

export async function admissionWorkflow(input: AdmissionInput): Promise<void> {
  const line = new AdmissionLine(input.capacity, input.carried);
  /** Holders whose grant is to be sent (again, for a holder that asked twice: its first may be lost). */
  const toNotify: string[] = [];

  // The Web UI's details change with every request and release, not only when someone is admitted.
  setHandler(requestSlotSignal, (request) => {
    if (line.request(request, Date.now()) === 'already-holding') toNotify.push(request.holder);
    showLine(line, input.node);
  });
  setHandler(releaseSlotSignal, ({ holder }) => {
    if (line.release(holder)) showLine(line, input.node);
  });
  setHandler(setCapacitySignal, (capacity) => line.setCapacity(capacity));
  setHandler(admissionLineQuery, () => line.view(input.node));

  /** A holder whose workflow is gone cannot be told, nor release: its slot goes back at once. */
  async function grant(holder: string): Promise<void> {
    try {
      await getExternalWorkflowHandle(holder).signal(slotGrantedSignal);
    } catch (err) {
      log.warn('the holder of a granted slot is gone: slot released', { holder, reason: (err as Error).message });
      line.release(holder);
    }
  }

  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= input.continueAsNewAfterEvents;
  };

  void reclaimEndedHolders(line, input.reclaimIntervalMs);
  for (;;) {
    for (const entry of line.admit(Date.now())) toNotify.push(entry.holder);
    const batch = toNotify.splice(0);
    await Promise.all(batch.map(grant));
    if (line.canAdmit()) continue; // a failed grant freed its slot
    showLine(line, input.node);
    if (historyFull()) break;
    await condition(() => line.canAdmit() || toNotify.length > 0 || historyFull());
  }
  // Signals are synchronous handlers, so the state is whole here; continue-as-new carries it.
  await condition(allHandlersFinished);
  await continueAsNew<typeof admissionWorkflow>({
    ...input,
    capacity: line.view(input.node).capacity,
    carried: line.state(),
  });
}

/**
 * A job releases its slot in its own `finally`; only a workflow that ended without running it (terminated,
 * reset) leaks one. While jobs wait, the holders' workflows are checked every interval and the slots of
 * ended ones go back. Nobody waiting: nothing to gain, and no timers grow the history.
 */
async function reclaimEndedHolders(line: AdmissionLine, intervalMs: number): Promise<void> {
  for (;;) {
    await condition(() => line.hasWaiting() && line.holders().length > 0);
    await sleep(intervalMs);
    if (!line.hasWaiting()) continue;
    try {
      const ended = await controlPlane.endedWorkflows({ workflowIds: line.holders() });
      for (const holder of ended) {
        if (line.release(holder))
          log.warn('reclaimed the slot of a workflow that ended without releasing it', { holder });
      }
    } catch (err) {
      log.warn('could not check the holders of slots; trying again next interval', { reason: (err as Error).message });
    }
  }
}

/** What the Web UI shows on this workflow's page ("current details"). */
function showLine(line: AdmissionLine, node: string): void {
  const view = line.view(node);
  const waiting = view.waiting
    .slice(0, DETAILS_SHOWN)
    .map((e, i) => `${i + 1}. ${e.holder} (${e.cores} cores, ${e.memoryMb} MB)`);
  const more = view.waiting.length > DETAILS_SHOWN ? [`… and ${view.waiting.length - DETAILS_SHOWN} more`] : [];
  setCurrentDetails(
    [
      `**${node}**: ${view.used.cores}/${view.capacity.cores} cores, ${view.used.memoryMb}/${view.capacity.memoryMb} MB in use by ${view.holding.length} sandbox(es)`,
      `**Waiting** (${view.waiting.length}):`,
      ...waiting,
      ...more,
    ].join('\n'),
  );
}
