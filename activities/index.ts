// All of a job's I/O, built by `createActivities(deps)` so tests and the worker inject real backends.
import { stat } from 'node:fs/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  GUEST_NOT_READY,
  VMID_CONFLICT,
  type Owner,
  type ReconcileReport,
  type ResolvedProfile,
} from '../common/contract';
import { resolveProfile, type AgentlabConfig } from '../common/config';
import {
  PermanentBackendError,
  type DestroyOutcome,
  type GuestJob,
  type SandboxBackend,
  type WorkspaceStorage,
} from '../backends/contract';
import type { WorkspaceRef } from '../common/workspace';
import { loadBundle, secretsPaths, type SecretsPaths } from '../common/secrets';
import { missingKeyProblem } from '../guest/agents';
import { withHeartbeat } from './heartbeat';
import { guestHeartbeatPath } from '../common/job-files';

export interface ActivityDeps {
  config: AgentlabConfig;
  backends: Partial<Record<ResolvedProfile['backend'], SandboxBackend>>;
  /** Where this host keeps the age key and bundles (default: secretsPaths()). */
  secrets?: SecretsPaths;
  /** Whether a job's workflow is still open, i.e. still owns its VMs (the worker asks Temporal). */
  workflowOpen?: (workflowId: string) => Promise<boolean>;
}

const POLL_INTERVAL_MS = 250;

export function createActivities({ config, backends, secrets = secretsPaths(), workflowOpen }: ActivityDeps) {
  function backendFor(kind: ResolvedProfile['backend']): SandboxBackend {
    const backend = backends[kind];
    if (!backend) {
      throw ApplicationFailure.nonRetryable(
        `backend "${kind}" is not enabled on worker node ${config.node} (enabled: ${Object.keys(backends).join(', ') || 'none'})`,
        'InvalidProfile',
      );
    }
    return backend;
  }

  function workspacesOf(kind: ResolvedProfile['backend']): WorkspaceStorage {
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

    async allocateVmid(input: { backend: ResolvedProfile['backend']; owner: Owner; attempt: number }): Promise<number> {
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
      await call(() => backendFor(profile.backend).clone(vmid, profile, owner, attempt, { repo }));
    },

    async configureVm(input: {
      vmid: number;
      profile: ResolvedProfile;
      jobId: string;
      localRepo?: GuestJob['localRepo'];
    }): Promise<{ tokenHash: string }> {
      const job: GuestJob = { jobId: input.jobId, controllerUrl: config.guestApi.url, localRepo: input.localRepo };
      return call(() => backendFor(input.profile.backend).configure(input.vmid, input.profile, job));
    },

    async startVm(input: { backend: ResolvedProfile['backend']; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).start(input.vmid));
    },

    async waitForGuestAddress(input: {
      backend: ResolvedProfile['backend'];
      vmid: number;
      timeoutMs: number;
    }): Promise<string> {
      const backend = backendFor(input.backend);
      const context = Context.current();
      const deadline = Date.now() + input.timeoutMs;
      for (;;) {
        const address = await call(() => backend.guestAddress(input.vmid));
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

    async stopVm(input: { backend: ResolvedProfile['backend']; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).stop(input.vmid));
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

    async deleteBootstrapSnippet(input: { backend: ResolvedProfile['backend']; vmid: number }): Promise<void> {
      await call(() => backendFor(input.backend).deleteBootstrap(input.vmid));
    },

    /** Disk-only; a snapshot of that name already there is this activity's earlier attempt. */
    async snapshotVm(input: {
      backend: ResolvedProfile['backend'];
      vmid: number;
      owner: Owner;
      name: string;
    }): Promise<void> {
      await call(() => backendFor(input.backend).snapshot(input.vmid, input.name, input.owner));
    },

    async rollbackVm(input: {
      backend: ResolvedProfile['backend'];
      vmid: number;
      owner: Owner;
      name: string;
    }): Promise<void> {
      await call(() => backendFor(input.backend).rollback(input.vmid, input.name, input.owner));
    },

    /**
     * Destroys VMs that carry our mark but whose job workflow has ended (terminated, or closed without
     * its teardown): nothing else would. Each destroy re-checks the mark, as teardown's does.
     */
    async reconcileOrphans(input: { backend: ResolvedProfile['backend'] }): Promise<ReconcileReport> {
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
          const outcome = await call(() => backend.destroy(vm.vmid, { jobId: vm.jobId, workflowId: vm.workflowId }));
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
      await call(() => workspacesOf(input.workspace.backend).attach(input.vmid, input.owner, input.workspace));
    },

    /** Before the VM is destroyed: the workspace must never go with it. */
    async detachWorkspace(input: { vmid: number; owner: Owner; workspace: WorkspaceRef }): Promise<void> {
      await call(() => workspacesOf(input.workspace.backend).detach(input.vmid, input.owner, input.workspace));
    },

    async destroyVm(input: {
      backend: ResolvedProfile['backend'];
      vmid: number;
      owner: Owner;
    }): Promise<DestroyOutcome> {
      return call(() => backendFor(input.backend).destroy(input.vmid, input.owner));
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
