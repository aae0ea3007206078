// One reconcile pass over a host's backends, started by that host's Schedule or `agentlab sandbox reconcile`.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { hostTaskQueue, type ReconcileReport, type ResolvedProfile } from '../common/contract';

export async function reconcileWorkflow(input: {
  node: string;
  backends: ResolvedProfile['backend'][];
}): Promise<ReconcileReport[]> {
  const host = proxyActivities<Activities>({
    taskQueue: hostTaskQueue(input.node),
    startToCloseTimeout: '10m',
    heartbeatTimeout: '1m',
    retry: { maximumAttempts: 3 },
  });
  const reports: ReconcileReport[] = [];
  for (const backend of input.backends) reports.push(await host.reconcileOrphans({ backend }));
  return reports;
}
