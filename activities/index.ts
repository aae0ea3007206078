// All of a job's I/O, built by `createActivities(deps)` so tests and the worker inject real backends.
import { stat } from 'node:fs/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  GUEST_NOT_READY,
  VMID_CONFLICT,
  type BackendKind,
  type Owner,
  type ReconcileReport,
  type ResolvedProfile,
} from '../common/contract';
import { resolveProfile, type AgentlabConfig } from '../common/config';
import {
  PermanentBackendError,
  type Backends,
  type DestroyOutcome,
  type GuestBoot,
  type SandboxBackend,
  type VmRef,
  type WorkspaceStorage,
} from '../backends/contract';
import { mintBootstrap, secretHash } from '../common/bootstrap';
import type { WorkspaceRef } from '../common/workspace';
import { loadBundle, secretsPaths, type SecretsPaths } from '../common/secrets';
import { missingKeyProblem } from '../guest/agents';
import { withHeartbeat } from './heartbeat';
import { guestHeartbeatPath } from '../common/job-folder';

export interface ActivityDeps {
  config: AgentlabConfig;
  backends: Backends;
  /** Where this host keeps the age key and bundles (default: secretsPaths()). */
  secrets?: SecretsPaths;
  /** Whether a job's workflow is still open, i.e. still owns its VMs (the worker asks Temporal). */
  workflowOpen?: (workflowId: string) => Promise<boolean>;
}

const POLL_INTERVAL_MS = 250;

/**
 * The VM of the job whose workflow runs this activity: the owner every backend call checks. Inputs recorded
 * before they named the owner carry only the VMID, and the caller is the owner (a job's workflow id is its job id).
 */
function callersVm(vmid: number, jobId?: string): VmRef {
  const workflowId = Context.current().info.workflowExecution?.workflowId;
  if (!workflowId) throw ApplicationFailure.nonRetryable('a VM activity runs only for a workflow', 'InvalidProfile');
  return { vmid, owner: { jobId: jobId ?? workflowId, workflowId } };
}

export function createActivities({ config, backends, secrets = secretsPaths(), workflowOpen }: ActivityDeps) {
  function backendFor(kind: BackendKind): SandboxBackend {
    const backend = backends[kind];
    if (!backend) {
      throw ApplicationFailure.nonRetryable(
        `backend "${kind}" is not enabled on worker node ${config.node} (enabled: ${Object.keys(backends).join(', ') || 'none'})`,
        'InvalidProfile',
      );
    }
    return backend;
  }

  function workspacesOf(kind: BackendKind): WorkspaceStorage {
    const storage = backendFor(kind).workspaces;
    if (!storage) {
      throw ApplicationFailure.nonRetryable(
        `the ${kind} backend on node ${config.node} has no persistent workspaces yet`,
        'PermanentBackendError',
      );
    }
    return storage;
  }

  /** Backend errors marked permanent become non-retryable failures that keep the backend's text. */
  async function call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await withHeartbeat(work);
    } catch (err) {
      if (err instanceof PermanentBackendError) throw ApplicationFailure.nonRetryable(err.message, err.name);
      if (err instanceof Error && err.name === VMID_CONFLICT) {
        throw ApplicationFailure.create({ message: err.message, type: VMID_CONFLICT });
      }
      throw err;
    }
  }

  return {
    /** Runs on the shared task queue: picks the node and turns the profile into plain numbers. */
    async resolveProfile(input: { name: string; node?: string; checkAgentKeys?: boolean }): Promise<ResolvedProfile> {
      const profile = config.profiles.get(input.name);
      if (!profile) {
        const known = [...config.profiles.keys()].join(', ');
        throw ApplicationFailure.nonRetryable(`unknown profile "${input.name}" (known: ${known})`, 'InvalidProfile');
      }
      // Fail before any VM exists, not at bootstrap, when the bundle cannot be decrypted here.
      const bundle =
        profile.secretsBundle === undefined
          ? undefined
          : await loadBundle(secrets, profile.secretsBundle).catch((err: Error) => {
              throw ApplicationFailure.nonRetryable(`profile ${profile.name}: ${err.message}`, 'InvalidProfile');
            });
      if (input.checkAgentKeys && !profile.agent.command) {
        const problem = missingKeyProblem(profile.agent.kind, bundle?.env ?? {}, profile.secretsBundle);
        if (problem) throw ApplicationFailure.nonRetryable(`profile ${profile.name}: ${problem}`, 'InvalidProfile');
      }
      return {
        ...resolveProfile(profile, input.node ?? config.node),
        continueAsNewAfterEvents: config.temporal.continueAsNewAfterEvents,
      };
    },

    async allocateVmid(input: { backend: BackendKind; owner: Owner; attempt: number }): Promise<number> {
      return call(() => backendFor(input.backend).allocate(input.owner, input.attempt));
    },

    async cloneVm(input: {
      vmid: number;
      profile: ResolvedProfile;
      owner: Owner;
      attempt?: number;
      /** The job's repository, for the VM's description (absent for a bare sandbox, and in older histories). */
      repo?: string;
    }): Promise<void> {
      const { vmid, profile, owner, attempt, repo } = input;
      await call(() => backendFor(profile.backend).clone({ vmid, owner }, profile, attempt, { repo }));
    },

    /**
     * Mints the guest's one-time bootstrap (each attempt a new token) and has the backend write it; returns only
     * the token's hash: the token itself is never an activity argument or result, which are workflow history.
     */
    async configureVm(input: {
      vmid: number;
      profile: ResolvedProfile;
      jobId: string;
      localRepo?: GuestBoot['localRepo'];
    }): Promise<{ tokenHash: string }> {
      const bootstrap = mintBootstrap({ jobId: input.jobId, controllerUrl: config.guestApi.url }, input.vmid);
      const vm = callersVm(input.vmid, input.jobId);
      await call(() =>
        backendFor(input.profile.backend).configure(vm, input.profile, { bootstrap, localRepo: input.localRepo }),
      );
      return { tokenHash: secretHash(bootstrap.token) };
    },

    async startVm(input: { backend: BackendKind; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).start(callersVm(input.vmid)));
    },

    async waitForGuestAddress(input: { backend: BackendKind; vmid: number; timeoutMs: number }): Promise<string> {
      const backend = backendFor(input.backend);
      const context = Context.current();
      const vm = callersVm(input.vmid);
      const deadline = Date.now() + input.timeoutMs;
      for (;;) {
        const address = await call(() => backend.guestAddress(vm));
        if (address) return address;
        if (Date.now() >= deadline) {
          throw ApplicationFailure.nonRetryable(
            `guest of sandbox ${input.vmid} did not report an address within ${Math.round(input.timeoutMs / 1000)}s`,
            GUEST_NOT_READY,
          );
        }
        context.heartbeat();
        await context.sleep(POLL_INTERVAL_MS); // cancellation-aware
      }
    },

    async stopVm(input: { backend: BackendKind; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).stop(callersVm(input.vmid)));
    },

    /**
     * Returns once the job's guest runner has not been heard for `silenceMs`; cancelled when the job ends.
     * Each (re)start of the activity gives the runner a whole period anew: the worker itself may have been
     * the one away, and the runner's heartbeats resume within seconds of its return.
     */
    async awaitGuestSilence(input: { jobId: string; silenceMs: number }): Promise<{ silentForMs: number }> {
      const context = Context.current();
      const since = Date.now();
      const path = guestHeartbeatPath(config.dataDir, input.jobId);
      for (;;) {
        context.heartbeat();
        const heard = await stat(path).then(
          (s) => s.mtimeMs,
          () => 0,
        );
        const silentForMs = Date.now() - Math.max(heard, since);
        if (silentForMs >= input.silenceMs) return { silentForMs };
        await context.sleep(Math.min(1000, input.silenceMs - silentForMs));
      }
    },

    async deleteBootstrapSnippet(input: { backend: BackendKind; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).deleteBootstrap(callersVm(input.vmid)));
    },

    /** Disk-only; a snapshot of that name already there is this activity's earlier attempt. */
    async snapshotVm(input: { backend: BackendKind; vmid: number; owner: Owner; name: string }): Promise<void> {
      await call(() => backendFor(input.backend).snapshot({ vmid: input.vmid, owner: input.owner }, input.name));
    },

    async rollbackVm(input: { backend: BackendKind; vmid: number; owner: Owner; name: string }): Promise<void> {
      await call(() => backendFor(input.backend).rollback({ vmid: input.vmid, owner: input.owner }, input.name));
    },

    /**
     * Destroys VMs that carry our mark but whose job workflow has ended (terminated, or closed without
     * its teardown): nothing else would. Each destroy re-checks the mark, as teardown's does.
     */
    async reconcileOrphans(input: { backend: BackendKind }): Promise<ReconcileReport> {
      if (!workflowOpen)
        throw ApplicationFailure.nonRetryable('this worker cannot look up workflows', 'InvalidProfile');
      const backend = backendFor(input.backend);
      const report: ReconcileReport = {
        node: config.node,
        backend: input.backend,
        checked: 0,
        destroyed: [],
        kept: [],
        failed: [],
      };
      for (const vm of await call(() => backend.listOwned())) {
        report.checked++;
        Context.current().heartbeat(report);
        if (await workflowOpen(vm.workflowId)) {
          report.kept.push(vm.vmid);
          continue;
        }
        try {
          // The owner is the VM's own mark: the reconciler destroys it only because that workflow has ended.
          const owner = { jobId: vm.jobId, workflowId: vm.workflowId };
          const outcome = await call(() => backend.destroy({ vmid: vm.vmid, owner }));
          if (outcome === 'destroyed') report.destroyed.push(vm.vmid);
        } catch (err) {
          report.failed.push({ vmid: vm.vmid, reason: (err as Error).message });
        }
      }
      return report;
    },

    /** The workspace workflow's: its storage on this host. */
    async createWorkspace(input: { workspace: WorkspaceRef }): Promise<void> {
      await call(() => workspacesOf(input.workspace.backend).create(input.workspace));
    },

    async deleteWorkspace(input: { workspace: WorkspaceRef }): Promise<void> {
      await call(() => workspacesOf(input.workspace.backend).delete(input.workspace));
    },

    /** The job workflow's, after the clone: the sandbox sees the workspace at /workspace from its first boot. */
    async attachWorkspace(input: { vmid: number; owner: Owner; workspace: WorkspaceRef }): Promise<void> {
      await call(() =>
        workspacesOf(input.workspace.backend).attach({ vmid: input.vmid, owner: input.owner }, input.workspace),
      );
    },

    /** Before the VM is destroyed: the workspace must never go with it. */
    async detachWorkspace(input: { vmid: number; owner: Owner; workspace: WorkspaceRef }): Promise<void> {
      await call(() =>
        workspacesOf(input.workspace.backend).detach({ vmid: input.vmid, owner: input.owner }, input.workspace),
      );
    },

    async destroyVm(input: { backend: BackendKind; vmid: number; owner: Owner }): Promise<DestroyOutcome> {
      return call(() => backendFor(input.backend).destroy({ vmid: input.vmid, owner: input.owner }));
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
