// What a sandbox waits on besides its operations: its runner's result (or silence), its lease or an operator's
// destroy, and, once parked, a history full enough to hand over to a fresh run.
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResolvedProfile } from '../common/contract';
import { utcMinute } from '../common/job-metadata';
import { hostActivities } from './host-activities';
import type { Run, Sandbox } from './sandbox';

/** Why the job scope was interrupted from outside the main flow. */
export type Interruption = 'lease-expired' | 'destroy-requested';

/**
 * A bare sandbox, or a keepalive one after its job, waits for its lease or an operator. Renewals, stops and
 * starts grow its history without bound, so past the profile's limit (or Temporal's suggestion) it returns
 * for a hand-over, between operations only: no update may be cut off half way.
 */
export async function park(sandbox: Sandbox, p: ResolvedProfile): Promise<void> {
  // Histories from before hand-overs existed wait as they did (forever), so they replay as they ran.
  const mayHandOver = patched('continue-as-new');
  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= (p.continueAsNewAfterEvents ?? Infinity);
  };
  await condition(() => mayHandOver && historyFull() && sandbox.busy === undefined && allHandlersFinished());
  const lease = sandbox.leaseExpiresAt;
  // The watcher is ending this run (lease or destroy) in this very activation: let it.
  if (sandbox.destroyRequested || (lease !== undefined && Date.now() >= lease)) await condition(() => false);
  sandbox.handingOver = true;
}

/**
 * Waits for the runner's result while a host activity watches its heartbeats; returns how long it was
 * silent when that came first (a VM that crashed or lost its runner would otherwise hold the job until
 * its lease ends), or undefined once the result is in.
 */
export async function awaitResultOrSilence(
  run: Run,
  p: ResolvedProfile,
  silenceMs: number,
): Promise<number | undefined> {
  const { request, sandbox } = run;
  const watchdog = hostActivities(p, {
    startToCloseTimeout: p.maxTtlMs + 60 * 60_000,
    retry: { initialInterval: '1s', maximumInterval: '10s' },
  });
  let silentForMs: number | undefined;
  await CancellationScope.cancellable(async () => {
    const watching = watchdog.awaitGuestSilence({ jobId: request.jobId, silenceMs }).then(
      (outcome) => {
        silentForMs = outcome.silentForMs;
      },
      (err: unknown) => {
        if (!isCancellation(err)) throw err;
      },
    );
    await condition(() => sandbox.result !== undefined || silentForMs !== undefined);
    if (sandbox.result !== undefined) CancellationScope.current().cancel();
    await watching;
  });
  return sandbox.result === undefined ? silentForMs : undefined;
}

/** Ends the job scope when the lease expires or an operator destroys the sandbox. */
export async function watchLeaseAndDestroy(sandbox: Sandbox): Promise<Interruption | undefined> {
  for (;;) {
    if (sandbox.mainFlowDone) return undefined;
    if (sandbox.destroyRequested) return 'destroy-requested';
    const lease = sandbox.leaseExpiresAt;
    if (lease !== undefined && Date.now() >= lease) return 'lease-expired';
    const changed = () => sandbox.mainFlowDone || sandbox.destroyRequested || sandbox.leaseExpiresAt !== lease;
    if (lease === undefined) await condition(changed);
    else await condition(changed, lease - Date.now(), { summary: `lease until ${utcMinute(lease, Date.now())}` });
  }
}
