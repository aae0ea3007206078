// jobWorkflow: one durable workflow per job (or per bare sandbox): provision, run, always tear down.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { JobOutcome, JobRequest, SandboxHandOver } from '../common/contract';
import { formatDuration } from '../common/duration';
import { setHandlers } from './handlers';
import { failureMessage, hostActivities } from './host-activities';
import { acquireWorkspace, provision, resolveProfile, takeCleanSnapshot } from './provision';
import { Sandbox, type Run } from './sandbox';
import { teardown } from './teardown';
import { awaitResultOrSilence, park, watchLeaseAndDestroy, type Interruption } from './waits';

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

  async function mainFlow(): Promise<void> {
    if (handOver) return park(sandbox, handOver.profile); // a continued run: the sandbox is parked already
    const { profile, ttlMs } = await resolveProfile(run);
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
      return park(sandbox, profile); // a bare sandbox lives until its lease expires or it is destroyed
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
    const silent = silence > 0 ? await awaitResultOrSilence(run, profile, silence) : undefined;
    if (silent !== undefined) {
      sandbox.finish(
        'FAILED',
        `the guest runner went silent: no heartbeat for ${formatDuration(silent)} (its VM died?)`,
      );
      if (sandbox.keepalive) await park(sandbox, profile);
      return;
    }
    sandbox.finish(sandbox.result!.status, sandbox.result!.message, sandbox.result!.exitCode);
    if (sandbox.keepalive) await park(sandbox, profile); // the sandbox outlives the job until lease or destroy
  }

  let interruption: Interruption | undefined;
  const watcher = watchLeaseAndDestroy(sandbox).then(
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
