// Tearing a sandbox down: every VM the workflow created is destroyed, whatever ended it.
import { condition, log } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ResolvedProfile } from '../common/contract';
import { failureMessage, hostActivities, workspaceActivities } from './host-activities';
import type { Sandbox } from './sandbox';

/** Destroys every VM this workflow created (detaching the workspace first); true once none is left. */
export async function destroyCreated(sandbox: Sandbox, p: ResolvedProfile, activities: Activities): Promise<boolean> {
  const { owner, workspace } = sandbox;
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

/**
 * DESTROYED, or FAILED while a VM may be left: then it waits for an operator's `destroy --force` and tries
 * again, for as long as it takes.
 */
export async function teardown(sandbox: Sandbox): Promise<void> {
  if (!sandbox.profile || sandbox.created.length === 0) {
    if (sandbox.state !== 'FAILED') sandbox.transition(sandbox.jobStatus === 'FAILED' ? 'FAILED' : 'DESTROYED');
    return;
  }
  const teardownActivities = hostActivities(sandbox.profile, {
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: sandbox.profile.teardownAttempts },
  });
  for (;;) {
    if (await destroyCreated(sandbox, sandbox.profile, teardownActivities)) {
      sandbox.transition('DESTROYED');
      return;
    }
    // The VM may still exist: stay visible in a state that allows `destroy --force`, and wait for it.
    if (sandbox.state !== 'TIMEOUT' && sandbox.state !== 'FAILED') sandbox.transition('FAILED', 'teardown failed');
    sandbox.forceDestroyRequested = false;
    await condition(() => sandbox.forceDestroyRequested);
  }
}
