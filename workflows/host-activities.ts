// How a job's workflow calls activities (the control plane's, and its host's by the profile's node), and how
// it reads their failures.
import { ActivityFailure, ApplicationFailure, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  GUEST_NOT_READY,
  hostTaskQueue,
  PERMANENT_ERROR_TYPES,
  VMID_CONFLICT,
  type ResolvedProfile,
} from '../common/contract';
import { withSummaries } from './activity-summaries';

export const controlPlane = withSummaries(
  proxyActivities<Activities>({
    startToCloseTimeout: '30s',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: PERMANENT_ERROR_TYPES },
  }),
);

export function hostActivities(profile: ResolvedProfile, overrides: Partial<ActivityOptions> = {}): Activities {
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
export const workspaceActivities = (profile: ResolvedProfile): Activities =>
  hostActivities(profile, { heartbeatTimeout: '3s' });

export function isPermanent(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && PERMANENT_ERROR_TYPES.includes(cause.type ?? '');
}

/** The innermost message: "Activity task failed" says nothing to an operator. */
export function failureMessage(err: unknown): string {
  let current: unknown = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
