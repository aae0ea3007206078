// The messages a sandbox answers (queries, updates, signals) and their validators: each reads and changes the
// one Sandbox object; power and disk operations run in the job's scope, so a lease expiry or destroy cuts them off.
import { isCancellation, log, patched, setHandler } from '@temporalio/workflow';
import {
  CLEAN_SNAPSHOT,
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
} from '../common/contract';
import { userSnapshotNameProblem } from '../common/snapshot-names';
import { formatDuration, ttlAboveMaximum } from '../common/duration';
import { operationRejection } from '../common/states';
import { accessRejection } from '../common/operator-access';
import { failureMessage } from './host-activities';
import type { Run } from './sandbox';
import { destroySignalInput, renewSignalTtl, SIGNAL_DESCRIPTIONS } from './signal-input';

/** A bootstrap token is good for this long after it was written into the VM (seed: 10 min). */
export const BOOTSTRAP_TOKEN_TTL_MS = 10 * 60_000;

/** Sets every handler, in the order jobWorkflow always has (buffered messages are delivered in that order). */
export function setHandlers(run: Run): void {
  const { request, sandbox } = run;
  const { owner, workspace } = sandbox;

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
      await run.jobScope.run(() => run.host!.stopVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid! }));
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
    await run.jobScope.run(async () => {
      await run.host!.startVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid! });
      sandbox.setAddress(
        await run.host!.waitForGuestAddress({
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
      await run.jobScope.run(() => run.host!.stopVm(vm));
      poweredOff = true;
      try {
        await run.jobScope.run(() => run.host!.rollbackVm({ ...vm, owner, name }));
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
        await run.jobScope.run(() =>
          run.host!.snapshotVm({ backend: sandbox.profile!.backend, vmid: sandbox.vmid!, owner, name }),
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
}
