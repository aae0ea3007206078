// jobWorkflow: one durable workflow per job (or per bare sandbox): provision, run, always tear down.
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  claimBootstrapUpdate,
  describeQuery,
  destroyByNameSignal,
  recordAccessUpdate,
  destroySignal,
  destroyUpdate,
  renewLeaseSignal,
  renewLeaseUpdate,
  reportResultSignal,
  restoreUpdate,
  revertUpdate,
  runnerCredentialHashQuery,
  snapshotUpdate,
  startUpdate,
  stopUpdate,
  type ClaimBootstrapResponse,
  type JobOutcome,
  type JobRequest,
  type ResolvedProfile,
  type SandboxHandOver,
} from '../common/contract';
import {
  CLEAN_SNAPSHOT,
  GUEST_NOT_READY,
  hostTaskQueue,
  PERMANENT_ERROR_TYPES,
  VMID_CONFLICT,
} from '../common/contract';
import { userSnapshotNameProblem } from '../common/snapshot-names';
import { formatDuration, ttlAboveMaximum } from '../common/duration';
import { jobRequestProblem } from '../common/schemas';
import { operationRejection } from '../common/states';
import { accessRejection } from '../common/operator-access';
import { utcMinute } from '../common/job-metadata';
import { withSummaries } from './activity-summaries';
import { Sandbox } from './sandbox';
import { destroySignalInput, renewSignalTtl, SIGNAL_DESCRIPTIONS } from './signal-input';

/** A bootstrap token is good for this long after it was written into the VM (seed: 10 min). */
export const BOOTSTRAP_TOKEN_TTL_MS = 10 * 60_000;

const controlPlane = withSummaries(
  proxyActivities<Activities>({
    startToCloseTimeout: '30s',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: PERMANENT_ERROR_TYPES },
  }),
);

function hostActivities(profile: ResolvedProfile, overrides: Partial<ActivityOptions> = {}): Activities {
  return withSummaries(
    proxyActivities<Activities>({
      taskQueue: hostTaskQueue(profile.node),
      startToCloseTimeout: '5m',
      heartbeatTimeout: '10s',
      retry: {
        initialInterval: '1s',
        backoffCoefficient: 2,
        maximumInterval: '30s',
        maximumAttempts: 6,
        nonRetryableErrorTypes: [...PERMANENT_ERROR_TYPES, GUEST_NOT_READY, VMID_CONFLICT],
      },
      ...overrides,
    }),
  );
}

/** Attaching and detaching are quick: a worker that died during one is noticed within seconds. */
const workspaceActivities = (profile: ResolvedProfile): Activities =>
  hostActivities(profile, { heartbeatTimeout: '3s' });

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
  const { owner, admission, workspace } = sandbox;
  let host: Activities | undefined = sandbox.profile && hostActivities(sandbox.profile);

  const jobScope = new CancellationScope();

  // ---- messages ---------------------------------------------------------------------------------
  setHandler(describeQuery, () => ({
    ...sandbox.describe(),
    ...(sandbox.profile ? { backend: sandbox.profile.backend } : {}),
    ...(request.workspace ? { workspace: { name: request.workspace.name, held: workspace.ref !== undefined } } : {}),
  }));
  setHandler(runnerCredentialHashQuery, () => sandbox.claimedCredentialHash);

  setHandler(
    claimBootstrapUpdate,
    ({ runnerCredentialHash }): ClaimBootstrapResponse => {
      sandbox.claimedCredentialHash = runnerCredentialHash;
      const secretsBundle = sandbox.profile?.secretsBundle;
      if (!request.repo || !request.task) return { job: null, secretsBundle };
      return {
        secretsBundle,
        job: {
          jobId: request.jobId,
          repo: request.repo,
          ref: request.ref ?? 'HEAD',
          ...(request.commit ? { commit: request.commit } : {}),
          task: request.task,
          agentCommand: (request.agentCommand ?? sandbox.profile?.agentCommand)!,
          // The profile's own agent (not a command the request brought): the runner prepares it.
          ...(!request.agentCommand && sandbox.profile?.agentKind
            ? {
                agentKind: sandbox.profile.agentKind,
                ...(sandbox.profile.agentModel ? { agentModel: sandbox.profile.agentModel } : {}),
                ...(sandbox.profile.agentMaxRetries !== undefined
                  ? { agentMaxRetries: sandbox.profile.agentMaxRetries }
                  : {}),
              }
            : {}),
          timeoutSeconds: Math.ceil((sandbox.profile?.agentTimeoutMs ?? 0) / 1000),
        },
      };
    },
    {
      validator: ({ tokenHash, runnerCredentialHash }) => {
        // The same runner asking again (its answer was lost with a worker that died) gets the same answer;
        // anybody else finds the token used.
        const repeated =
          sandbox.claimedCredentialHash !== null && runnerCredentialHash === sandbox.claimedCredentialHash;
        if (sandbox.claimedCredentialHash !== null && !repeated) throw new Error('bootstrap token already used');
        if (!sandbox.bootstrap) throw new Error('no bootstrap token was issued for this job');
        // PROVISIONING too: the guest may boot and claim before the start activity reports back (its
        // result can be delayed by retries), and the token it holds proves it is this attempt's VM.
        const claimable =
          sandbox.state === 'PROVISIONING' ||
          sandbox.state === 'BOOTING' ||
          sandbox.state === 'READY' ||
          (sandbox.state === 'RUNNING' && !sandbox.hasJob);
        if (!claimable && !(repeated && sandbox.state === 'RUNNING' && sandbox.result === undefined)) {
          throw new Error(`sandbox is ${sandbox.state}`);
        }
        const ttlMs = sandbox.profile?.bootstrapTokenTtlMs ?? BOOTSTRAP_TOKEN_TTL_MS;
        if (Date.now() - sandbox.bootstrap.issuedAt > ttlMs) throw new Error('bootstrap token expired');
        if (tokenHash !== sandbox.bootstrap.tokenHash) throw new Error('bootstrap token invalid');
      },
    },
  );

  setHandler(reportResultSignal, (reported) => {
    if (sandbox.result === undefined && sandbox.hasJob && sandbox.claimedCredentialHash !== null)
      sandbox.result = reported;
  });

  /** The renew rules (the states table, the profile's maximum), for the Update's validator and the Signal alike. */
  const renewRejection = (ttlMs: number): string | undefined => {
    const rejection = operationRejection(sandbox.state, 'renew');
    if (rejection) return rejection;
    if (!(ttlMs > 0)) return `ttl must be positive, got ${ttlMs}ms`;
    if (sandbox.profile && ttlMs > sandbox.profile.maxTtlMs) {
      return `ttl ${ttlAboveMaximum(formatDuration(ttlMs), sandbox.profile.maxTtlMs, sandbox.profile.name)}`;
    }
    return undefined;
  };

  setHandler(
    renewLeaseUpdate,
    ({ ttlMs }) => {
      sandbox.setLease(Date.now() + ttlMs);
      return { leaseExpiresAt: sandbox.leaseExpiresAt! };
    },
    {
      validator: ({ ttlMs }) => {
        const rejection = renewRejection(ttlMs);
        if (rejection) throw new Error(rejection);
      },
    },
  );

  /**
   * The Signals operators send by hand carry no answer: one the rules refuse becomes a timeline entry with the
   * reason. Histories from before these handlers dropped such Signals, so they act only behind the patch.
   */
  setHandler(
    renewLeaseSignal,
    (input) => {
      if (!patched('operator-signals')) return;
      const asked = renewSignalTtl(input);
      if ('problem' in asked) return sandbox.signalRefused('renewLease', asked.problem);
      const rejection = renewRejection(asked.ttlMs);
      if (rejection) return sandbox.signalRefused('renewLease', rejection);
      sandbox.setLease(Date.now() + asked.ttlMs);
    },
    { description: SIGNAL_DESCRIPTIONS.renewLease },
  );

  const destroyRejection = (force: boolean): string | undefined =>
    sandbox.state === 'DESTROYED'
      ? 'sandbox is already DESTROYED'
      : operationRejection(sandbox.state, 'destroy', { force });

  setHandler(
    destroyUpdate,
    ({ reason }) => {
      sandbox.requestDestroy(reason);
      return { state: sandbox.state };
    },
    {
      validator: ({ force }) => {
        const rejection = destroyRejection(force);
        if (rejection) throw new Error(rejection);
      },
    },
  );
  function destroyBySignal(name: string, input: unknown): void {
    const refuse = (rejection: string) => {
      log.warn('destroy signal refused', { signal: name, rejection });
      sandbox.signalRefused(name, rejection);
    };
    const asked = destroySignalInput(input);
    if ('problem' in asked) return refuse(asked.problem);
    const rejection = destroyRejection(asked.force ?? false);
    if (rejection) return refuse(rejection);
    log.info('destroy requested by signal', { signal: name, reason: asked.reason });
    sandbox.requestDestroy(asked.reason);
  }
  setHandler(destroySignal, (input) => destroyBySignal('destroyRequested', input));
  setHandler(
    destroyByNameSignal,
    (input) => {
      if (patched('operator-signals')) destroyBySignal('destroy', input);
    },
    { description: SIGNAL_DESCRIPTIONS.destroy },
  );

  /** The sandbox's job (not a bare sandbox's lifetime) is running: disk operations need --force. */
  const jobRunning = () => sandbox.hasJob && sandbox.jobStatus === 'RUNNING';
  const busyRejection = (): string | undefined =>
    sandbox.busy ? `a ${sandbox.busy} of this sandbox is in progress (it is ${sandbox.state})` : undefined;

  setHandler(
    stopUpdate,
    async () => {
      await jobScope.run(() => host!.stopVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid! }));
      sandbox.endJobKilledByPowerOff('stopped');
      sandbox.transition('STOPPED');
      return { state: sandbox.state };
    },
    {
      validator: () => {
        const rejection = operationRejection(sandbox.state, 'stop') ?? busyRejection();
        if (rejection) throw new Error(rejection);
      },
    },
  );

  /** BOOTING → READY or RUNNING: what `start` does, and `revert --restart` after its rollback. */
  async function boot(): Promise<void> {
    sandbox.transition('BOOTING');
    await jobScope.run(async () => {
      await host!.startVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid! });
      sandbox.setAddress(
        await host!.waitForGuestAddress({
          backend: sandbox.profile!.backend,
          vmid: sandbox.vmid!,
          timeoutMs: sandbox.profile!.bootTimeoutMs,
        }),
      );
    });
    sandbox.transition(sandbox.claimedCredentialHash !== null || !sandbox.hasJob ? 'RUNNING' : 'READY');
  }

  setHandler(
    startUpdate,
    async () => {
      await boot();
      return { state: sandbox.state };
    },
    {
      validator: () => {
        const rejection = operationRejection(sandbox.state, 'start') ?? busyRejection();
        if (rejection) throw new Error(rejection);
      },
    },
  );

  /** Stop, roll the disks back to `name`, STOPPED, and with `restart` boot: what revert and restore share. */
  async function rollBack(name: string, restart: boolean, operation: 'revert' | 'restore'): Promise<void> {
    sandbox.busy = operation;
    let poweredOff = false;
    try {
      const vm = { backend: sandbox.profile!.backend, vmid: sandbox.vmid! };
      await jobScope.run(() => host!.stopVm(vm));
      poweredOff = true;
      try {
        await jobScope.run(() => host!.rollbackVm({ ...vm, owner, name }));
      } catch (err) {
        // The VM is off whatever the rollback did: say so, and why it did not finish.
        if (!isCancellation(err)) sandbox.transition('STOPPED', `${operation} failed: ${failureMessage(err)}`);
        throw err;
      }
      sandbox.transition(
        'STOPPED',
        operation === 'revert' ? `reverted to snapshot ${name}` : `restored snapshot ${name}`,
      );
      if (restart) await boot();
    } finally {
      sandbox.busy = undefined;
      // Last, so a throwaway sandbox's teardown cannot race the rollback or the boot.
      if (poweredOff) sandbox.endJobKilledByPowerOff(operation === 'revert' ? 'reverted' : 'restored to a snapshot');
    }
  }

  setHandler(
    revertUpdate,
    async ({ restart }) => {
      await rollBack(CLEAN_SNAPSHOT, restart, 'revert');
      return { state: sandbox.state };
    },
    {
      validator: ({ force }) => {
        const rejection =
          operationRejection(sandbox.state, 'revert', { force, jobRunning: jobRunning() }) ?? busyRejection();
        if (rejection) throw new Error(rejection);
        if (!sandbox.cleanSnapshot) {
          const why = sandbox.cleanSnapshotError
            ? `taking it failed: ${sandbox.cleanSnapshotError}`
            : 'it has not been taken';
          throw new Error(`sandbox has no ${CLEAN_SNAPSHOT} snapshot to revert to (${why})`);
        }
      },
    },
  );

  setHandler(
    snapshotUpdate,
    async ({ name }) => {
      const record = { name, at: Date.now(), state: sandbox.state };
      sandbox.busy = 'snapshot';
      try {
        await jobScope.run(() =>
          host!.snapshotVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid!, owner, name }),
        );
      } finally {
        sandbox.busy = undefined;
      }
      sandbox.snapshots.push(record);
      return { snapshot: record };
    },
    {
      validator: ({ name, force }) => {
        const rejection = operationRejection(sandbox.state, 'snapshot', { force }) ?? busyRejection();
        if (rejection) throw new Error(rejection);
        // The CLI refuses these at the door; a client that calls the Update directly meets the same rule here.
        const badName = userSnapshotNameProblem(name);
        if (badName) throw new Error(badName);
        // A backend takes an existing name as a retried call's: saving over it would silently keep the old one.
        if (sandbox.snapshots.some((s) => s.name === name)) {
          throw new Error(`snapshot ${name} exists already; restore it, or save under another name`);
        }
      },
    },
  );

  setHandler(
    restoreUpdate,
    async ({ name, restart }) => {
      await rollBack(name, restart, 'restore');
      return { state: sandbox.state };
    },
    {
      validator: ({ name, force }) => {
        const rejection =
          operationRejection(sandbox.state, 'restore', { force, jobRunning: jobRunning() }) ?? busyRejection();
        if (rejection) throw new Error(rejection);
        if (!sandbox.snapshots.some((s) => s.name === name)) {
          const saved = sandbox.snapshots.map((s) => s.name).join(', ') || 'none';
          const hint = name === CLEAN_SNAPSHOT ? '; `sandbox revert` rolls back to it' : '';
          throw new Error(`sandbox has no snapshot ${name} (saved: ${saved})${hint}`);
        }
      },
    },
  );

  /**
   * A person about to get in (`sandbox shell`, `sandbox ssh`): the CLI records it here first and enters only
   * once accepted, so the timeline shows everyone who was inside, and the state rules live in one place.
   * No older history carries this Update, so it replays either way; the marker tells histories that
   * recorded accesses apart for a later change to this handler.
   */
  setHandler(
    recordAccessUpdate,
    (request) => {
      if (patched('operator-access')) sandbox.accessed(request);
      return {
        vmid: sandbox.vmid!,
        node: sandbox.profile!.node,
        backend: sandbox.profile!.backend,
        address: sandbox.address,
      };
    },
    {
      validator: (request) => {
        const target = {
          jobId: owner.jobId,
          state: sandbox.state,
          backend: sandbox.profile?.backend,
          node: sandbox.profile?.node,
        };
        const rejection = accessRejection(target, request) ?? busyRejection();
        if (rejection) throw new Error(rejection);
      },
    },
  );

  /**
   * The `clean` snapshot, right after first boot. Not fatal, as in the original system: the sandbox
   * works without it, only `revert` is refused (with the reason, which `describe` also shows).
   */
  async function takeCleanSnapshot(p: ResolvedProfile): Promise<void> {
    const activities = hostActivities(p, {
      retry: {
        initialInterval: '1s',
        maximumInterval: '10s',
        maximumAttempts: 3,
        nonRetryableErrorTypes: PERMANENT_ERROR_TYPES,
      },
    });
    try {
      await activities.snapshotVm({ backend: p.backend, vmid: sandbox.vmid!, owner, name: CLEAN_SNAPSHOT });
      sandbox.cleanSnapshot = true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      sandbox.cleanSnapshotError = failureMessage(err);
      log.warn('the clean snapshot failed; revert will be refused', {
        vmid: sandbox.vmid,
        reason: sandbox.cleanSnapshotError,
      });
    }
  }

  // ---- main flow --------------------------------------------------------------------------------
  async function provision(p: ResolvedProfile, activities: Activities): Promise<void> {
    for (let attempt = 1; attempt <= p.provisioningAttempts; attempt++) {
      sandbox.provisioningAttempt = attempt;
      sandbox.transition('PROVISIONING', attempt > 1 ? `attempt ${attempt} of ${p.provisioningAttempts}` : undefined);
      const vmid = await activities.allocateVmid({ backend: p.backend, owner, attempt });
      sandbox.setVmid(vmid);
      try {
        try {
          await activities.cloneVm({
            vmid,
            profile: p,
            owner,
            attempt,
            ...(request.repo ? { repo: request.repo } : {}),
          });
        } finally {
          // Recorded as soon as the clone may have created something; destroy re-checks our mark.
          sandbox.created.push(vmid);
        }
        // After the clone, before the first boot: the guest finds it mounted from the start.
        if (workspace.ref) {
          await workspaceActivities(p).attachWorkspace({ vmid, owner, workspace: workspace.ref });
          await workspace.attached(vmid);
        }
        sandbox.bootstrap = {
          ...(await activities.configureVm({
            vmid,
            profile: p,
            jobId: request.jobId,
            ...(request.commit ? { localRepo: { path: request.repo!, commit: request.commit } } : {}),
          })),
          issuedAt: Date.now(),
        };
        await activities.startVm({ backend: p.backend, vmid });
        sandbox.transition('BOOTING');
        sandbox.setAddress(
          await activities.waitForGuestAddress({ backend: p.backend, vmid, timeoutMs: p.bootTimeoutMs }),
        );
        sandbox.transition('READY');
        return;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const permanent = isPermanent(err);
        const reason = failureMessage(err);
        if (permanent || attempt === p.provisioningAttempts) {
          throw ApplicationFailure.nonRetryable(
            permanent ? reason : `provisioning failed after ${attempt} attempt(s): ${reason}`,
            'ProvisioningFailed',
          );
        }
        log.warn('provisioning attempt failed; destroying the VM and retrying', { attempt, vmid, reason });
        await destroyCreated(p, activities); // compensate before the next attempt
      }
    }
  }

  async function acquireWorkspace(p: ResolvedProfile, asked: NonNullable<JobRequest['workspace']>): Promise<void> {
    const ref = await workspace.acquire(asked.wait !== false);
    if (ref.node !== p.node || ref.backend !== p.backend) {
      throw ApplicationFailure.nonRetryable(
        `workspace ${ref.name} is on node ${ref.node} (${ref.backend}); this sandbox runs on ${p.node} (${p.backend})`,
        'InvalidRequest',
      );
    }
  }

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
    if (request.workspace) await acquireWorkspace(profile, request.workspace);
    // The lease runs from admission: time spent waiting for capacity is not the sandbox's.
    const leaseStart = patched('admission') ? await admission.acquire(profile) : workflowInfo().startTime.getTime();
    sandbox.setLease(leaseStart + ttlMs);
    host = hostActivities(profile);

    await provision(profile, host);
    // Histories recorded before the snapshot existed go straight on from READY: they must replay as they ran.
    if (patched('clean-snapshot')) await takeCleanSnapshot(profile);

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

  async function destroyCreated(p: ResolvedProfile, activities: Activities): Promise<boolean> {
    let allGone = true;
    for (const vmid of [...sandbox.created]) {
      try {
        // Never destroyed with the VM: a VM that still has it stays (and is retried) until it is off.
        if (workspace.ref) await workspaceActivities(p).detachWorkspace({ vmid, owner, workspace: workspace.ref });
        const outcome = await activities.destroyVm({ backend: p.backend, vmid, owner });
        if (outcome === 'not-ours') log.error('refused to destroy a VM we do not own', { vmid });
        sandbox.created.splice(sandbox.created.indexOf(vmid), 1);
      } catch (err) {
        log.error('destroying the VM failed', { vmid, reason: failureMessage(err) });
        allGone = false;
      }
    }
    return allGone;
  }

  async function teardown(): Promise<void> {
    if (!sandbox.profile || sandbox.created.length === 0) {
      if (sandbox.state !== 'FAILED') sandbox.transition(sandbox.jobStatus === 'FAILED' ? 'FAILED' : 'DESTROYED');
      return;
    }
    const teardownActivities = hostActivities(sandbox.profile, {
      retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: sandbox.profile.teardownAttempts },
    });
    for (;;) {
      if (await destroyCreated(sandbox.profile, teardownActivities)) {
        sandbox.transition('DESTROYED');
        return;
      }
      // The VM may still exist: stay visible in a state that allows `destroy --force`, and wait for it.
      if (sandbox.state !== 'TIMEOUT' && sandbox.state !== 'FAILED') sandbox.transition('FAILED', 'teardown failed');
      sandbox.forceDestroyRequested = false;
      await condition(() => sandbox.forceDestroyRequested);
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
        await teardown();
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

function isPermanent(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && PERMANENT_ERROR_TYPES.includes(cause.type ?? '');
}

/** The innermost message: "Activity task failed" says nothing to an operator. */
function failureMessage(err: unknown): string {
  let current: unknown = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
