// jobWorkflow: one durable workflow per job (or per bare sandbox): provision, run, always tear down.
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import { type JobOutcome, type JobRequest, type ResolvedProfile, type SandboxHandOver } from '../common/contract';
import { formatDuration, ttlAboveMaximum } from '../common/duration';
import { jobRequestProblem } from '../common/schemas';
import { utcMinute } from '../common/job-metadata';
import { setHandlers } from './handlers';
import { controlPlane, failureMessage, hostActivities } from './host-activities';
import { acquireWorkspace, provision, takeCleanSnapshot } from './provision';
import { Sandbox, type Run } from './sandbox';
import { teardown } from './teardown';

/** Why the job scope was interrupted from outside the main flow. */
type Interruption = 'lease-expired' | 'destroy-requested';

/**
 * `handOver` is absent when an operator starts the job; a parked sandbox whose history grew large passes it to
 * its next run (continue-as-new), which goes on where the last one stopped, with the same VM.
 */
export async function jobWorkflow(request: JobRequest, handOver?: SandboxHandOver): Promise<JobOutcome> {
  /** The workflow's own scope: `job cancel` cancels it (the job scope hears of it a microtask later). */
  const rootScope = CancellationScope.current();
  const sandbox = new Sandbox(request, handOver);
  const { admission, workspace } = sandbox;
  const host = sandbox.profile && hostActivities(sandbox.profile);

  const jobScope = new CancellationScope();
  const run: Run = { request, sandbox, jobScope, host };
  setHandlers(run);

  /**
   * A bare sandbox, or a keepalive one after its job, waits for its lease or an operator. Renewals, stops and
   * starts grow its history without bound, so past the profile's limit (or Temporal's suggestion) it returns
   * for a hand-over, between operations only: no update may be cut off half way.
   */
  async function park(p: ResolvedProfile): Promise<void> {
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

  async function mainFlow(): Promise<void> {
    if (handOver) return park(handOver.profile); // a continued run: the sandbox is parked already
    const profile = (sandbox.profile = await controlPlane.resolveProfile({
      name: request.profile,
      node: request.node,
      // A job that runs the profile's agent needs that agent's key in the bundle: checked before any VM exists.
      checkAgentKeys: sandbox.hasJob && !request.agentCommand,
    }));
    // The CLI checks every field; a request from another client (Temporal's CLI, the Web UI) meets the same rules.
    if (patched('validate-request')) {
      const problem = jobRequestProblem(request, profile.backend);
      if (problem) throw ApplicationFailure.nonRetryable(`invalid job request: ${problem}`, 'InvalidRequest');
    }
    const ttlMs = request.ttlMs ?? profile.ttlMs;
    if (ttlMs > profile.maxTtlMs) {
      throw ApplicationFailure.nonRetryable(
        `ttl ${ttlAboveMaximum(formatDuration(ttlMs), profile.maxTtlMs, profile.name)}`,
        'InvalidProfile',
      );
    }
    if (sandbox.hasJob && !(request.agentCommand ?? profile.agentCommand)) {
      throw ApplicationFailure.nonRetryable(`profile ${profile.name} has no agent command`, 'InvalidProfile');
    }
    sandbox.setProfile(profile, request.keepalive ?? profile.keepalive);
    // The workspace first: waiting for another sandbox to let go must not hold an admission slot meanwhile.
    if (request.workspace) await acquireWorkspace(sandbox, profile, request.workspace);
    // The lease runs from admission: time spent waiting for capacity is not the sandbox's.
    const leaseStart = patched('admission') ? await admission.acquire(profile) : workflowInfo().startTime.getTime();
    sandbox.setLease(leaseStart + ttlMs);
    const host = (run.host = hostActivities(profile));

    await provision(run, profile, host);
    // Histories recorded before the snapshot existed go straight on from READY: they must replay as they ran.
    if (patched('clean-snapshot')) await takeCleanSnapshot(sandbox, profile);

    if (!sandbox.hasJob) {
      sandbox.transition('RUNNING');
      sandbox.setJobStatus('RUNNING');
      return park(profile); // a bare sandbox lives until its lease expires or it is destroyed
    }

    const claimDeadline = `the guest claims its bootstrap within ${formatDuration(profile.bootstrapTimeoutMs)}`;
    const claimed = await condition(() => sandbox.claimedCredentialHash !== null, profile.bootstrapTimeoutMs, {
      summary: claimDeadline,
    });
    if (!claimed) {
      throw ApplicationFailure.nonRetryable(
        `the guest did not claim its bootstrap within ${formatDuration(profile.bootstrapTimeoutMs)}`,
        'BootstrapTimeout',
      );
    }
    if (sandbox.state !== 'STOPPED') sandbox.transition('RUNNING');
    sandbox.setJobStatus('RUNNING');
    await host.deleteBootstrapSnippet({ backend: profile.backend, vmid: sandbox.vmid! });

    const silence = profile.guestSilenceMs !== undefined && patched('guest-silence') ? profile.guestSilenceMs : 0;
    const silent = silence > 0 ? await awaitResultOrSilence(profile, silence) : undefined;
    if (silent !== undefined) {
      sandbox.finish(
        'FAILED',
        `the guest runner went silent: no heartbeat for ${formatDuration(silent)} (its VM died?)`,
      );
      if (sandbox.keepalive) await park(profile);
      return;
    }
    sandbox.finish(sandbox.result!.status, sandbox.result!.message, sandbox.result!.exitCode);
    if (sandbox.keepalive) await park(profile); // the sandbox outlives the job until lease or destroy
  }

  /**
   * Waits for the runner's result while a host activity watches its heartbeats; returns how long it was
   * silent when that came first (a VM that crashed or lost its runner would otherwise hold the job until
   * its lease ends), or undefined once the result is in.
   */
  async function awaitResultOrSilence(p: ResolvedProfile, silenceMs: number): Promise<number | undefined> {
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
  async function watchLeaseAndDestroy(): Promise<Interruption | undefined> {
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

  let interruption: Interruption | undefined;
  const watcher = watchLeaseAndDestroy().then(
    (reason) => {
      interruption = reason;
      if (reason) jobScope.cancel();
    },
    () => undefined, // the whole workflow was cancelled; the main flow sees it too
  );

  try {
    await jobScope.run(mainFlow);
  } catch (err) {
    if (isCancellation(err) && interruption === 'lease-expired') {
      sandbox.transition('TIMEOUT', 'lease expired');
      sandbox.finish('TIMEOUT', 'the sandbox lease expired');
    } else if (isCancellation(err) && interruption === 'destroy-requested') {
      const why = sandbox.destroyReason ? `: ${sandbox.destroyReason}` : '';
      sandbox.finish(sandbox.hasJob ? 'CANCELLED' : 'COMPLETED', `sandbox destroyed by operator${why}`);
    } else if (isCancellation(err)) {
      sandbox.finish('CANCELLED', 'job cancelled');
    } else {
      const message = failureMessage(err);
      if (sandbox.state === 'PROVISIONING' || sandbox.state === 'BOOTING' || sandbox.state === 'REQUESTED') {
        sandbox.transition('FAILED', message);
      }
      sandbox.finish('FAILED', message);
    }
  } finally {
    sandbox.mainFlowDone = true;
    // A cancel in the very activation that filled the history: the job ends here, it is not handed over.
    if (sandbox.handingOver && rootScope.consideredCancelled) {
      sandbox.handingOver = false;
      sandbox.finish('CANCELLED', 'job cancelled');
    }
    await CancellationScope.nonCancellable(async () => {
      await watcher;
      if (!sandbox.handingOver) {
        await teardown(sandbox);
        await workspace.release(); // only once no VM of this job has it any more
        await admission.release(); // only once the VM is gone: until then it still uses the host
      }
    });
  }
  if (sandbox.handingOver) {
    log.info('history is large: continuing as new with the same sandbox', {
      historyLength: workflowInfo().historyLength,
      vmid: sandbox.vmid,
    });
    await continueAsNew<typeof jobWorkflow>(request, sandbox.handOver());
  }
  return sandbox.outcome();
}
