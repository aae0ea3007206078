// Provisioning a sandbox: its profile, checked against the request; the workspace it asks for, its VM (clone, configure, first boot, retried on a fresh
// VM), and the clean snapshot right after.
import { ApplicationFailure, isCancellation, log, patched } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { CLEAN_SNAPSHOT, PERMANENT_ERROR_TYPES, type JobRequest, type ResolvedProfile } from '../common/contract';
import { formatDuration, ttlAboveMaximum } from '../common/duration';
import { jobRequestProblem } from '../common/schemas';
import { controlPlane, failureMessage, hostActivities, isPermanent, workspaceActivities } from './host-activities';
import type { Run, Sandbox } from './sandbox';
import { destroyCreated } from './teardown';

/**
 * The request's profile, resolved by the control plane, and the request checked against it (before any VM
 * exists); the sandbox holds the profile from here on.
 */
export async function resolveProfile(run: Run): Promise<{ profile: ResolvedProfile; ttlMs: number }> {
  const { request, sandbox } = run;
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
  return { profile, ttlMs };
}

/**
 * PROVISIONING → BOOTING → READY: a VMID, a clone, the workspace, the bootstrap token, the first boot; a failed
 * attempt's VM is destroyed before the next (up to the profile's attempts; a permanent error ends at once).
 */
export async function provision(run: Run, p: ResolvedProfile, activities: Activities): Promise<void> {
  const { request, sandbox } = run;
  const { owner, workspace } = sandbox;
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
      await destroyCreated(sandbox, p, activities); // compensate before the next attempt
    }
  }
}

/** The request's workspace, once its holder lets go (or at once); it must live where the profile's VMs do. */
export async function acquireWorkspace(
  sandbox: Sandbox,
  p: ResolvedProfile,
  asked: NonNullable<JobRequest['workspace']>,
): Promise<void> {
  const ref = await sandbox.workspace.acquire(asked.wait !== false);
  if (ref.node !== p.node || ref.backend !== p.backend) {
    throw ApplicationFailure.nonRetryable(
      `workspace ${ref.name} is on node ${ref.node} (${ref.backend}); this sandbox runs on ${p.node} (${p.backend})`,
      'InvalidRequest',
    );
  }
}

/**
 * The `clean` snapshot, right after first boot. Not fatal, as in the original system: the sandbox
 * works without it, only `revert` is refused (with the reason, which `describe` also shows).
 */
export async function takeCleanSnapshot(sandbox: Sandbox, p: ResolvedProfile): Promise<void> {
  const activities = hostActivities(p, {
    retry: {
      initialInterval: '1s',
      maximumInterval: '10s',
      maximumAttempts: 3,
      nonRetryableErrorTypes: PERMANENT_ERROR_TYPES,
    },
  });
  try {
    await activities.snapshotVm({
      backend: p.backend,
      vmid: sandbox.vmid!,
      owner: sandbox.owner,
      name: CLEAN_SNAPSHOT,
    });
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
