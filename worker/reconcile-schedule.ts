// Each host keeps one Temporal Schedule that runs `reconcileWorkflow` for its own backends: a VM of ours
// whose workflow ended without its teardown (terminated, reset, lost) is destroyed within one interval.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { Logger } from 'pino';
import { reconcileScheduleId } from '../common/contract';
import type { AgentlabConfig } from '../common/config';

/** Creates the Schedule, or brings an existing one up to date with this worker's config. */
export async function ensureReconcileSchedule(client: Client, config: AgentlabConfig, logger: Logger): Promise<void> {
  const scheduleId = reconcileScheduleId(config.node);
  const intervalMs = config.worker.reconcileIntervalMs;
  if (intervalMs === undefined) {
    await client.schedule
      .getHandle(scheduleId)
      .delete()
      .catch(() => undefined); // off means off, also for a Schedule an earlier config created
    return;
  }
  const options: ScheduleOptions = {
    scheduleId,
    spec: { intervals: [{ every: intervalMs }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'reconcileWorkflow',
      taskQueue: config.temporal.taskQueue,
      args: [{ node: config.node, backends: config.worker.backends }],
      workflowExecutionTimeout: intervalMs * 3,
    },
    // A pass still running (a slow Proxmox) makes the next one pointless; a worker that was down
    // catches up with one pass, not one per missed interval.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: intervalMs },
  };
  try {
    await client.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({
      ...previous,
      spec: options.spec,
      action: options.action,
      policies: { ...previous.policies, ...options.policies },
    }));
  }
  logger.info({ scheduleId, everyMs: intervalMs }, 'reconcile schedule ready');
}
