// The admission workflow's I/O: joining a host's line (on that host's task queue, so the capacity is the
// host's own config) and telling which holders' workflows have ended.
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import {
  admissionWorkflowId,
  exceedsCapacity,
  requestSlotSignal,
  setCapacitySignal,
  type AdmissionInput,
  type Capacity,
  type SlotRequest,
} from '../common/admission';
import type { admissionWorkflow } from '../workflows/admission-workflow';
import type { AgentlabConfig } from '../common/config';

export interface AdmissionDeps {
  config: AgentlabConfig;
  client: Client;
  /** Whether a workflow's latest run is still running (the worker asks Temporal). */
  workflowOpen: (workflowId: string) => Promise<boolean>;
}

/** This host's admission workflow as it should start: its node, capacity and settings. */
export function admissionInput(config: AgentlabConfig): AdmissionInput {
  return {
    node: config.node,
    capacity: config.worker.admission.capacity,
    reclaimIntervalMs: config.worker.admission.reclaimIntervalMs,
    continueAsNewAfterEvents: config.temporal.continueAsNewAfterEvents,
  };
}

/** signalWithStart's start half: the host's admission workflow, started if it is not running. */
function admissionStart(config: AgentlabConfig) {
  return {
    workflowId: admissionWorkflowId(config.node),
    taskQueue: config.temporal.taskQueue,
    args: [admissionInput(config)] as [AdmissionInput],
  };
}

/** At worker start: the admission workflow exists and knows this host's capacity as configured now. */
export async function announceCapacity({ config, client }: AdmissionDeps): Promise<void> {
  await client.workflow.signalWithStart<typeof admissionWorkflow, [Capacity]>('admissionWorkflow', {
    ...admissionStart(config),
    signal: setCapacitySignal,
    signalArgs: [config.worker.admission.capacity],
  });
}

export function createAdmissionActivities(deps: AdmissionDeps) {
  return {
    /** Host activity: puts a job in this host's line; a sandbox larger than the host fails the job at once. */
    async requestAdmission(request: SlotRequest): Promise<void> {
      const { capacity } = deps.config.worker.admission;
      if (exceedsCapacity(request, capacity)) {
        throw ApplicationFailure.nonRetryable(
          `the sandbox needs ${request.cores} cores and ${request.memoryMb} MB, more than node ${deps.config.node} ` +
            `admits at once (${capacity.cores} cores, ${capacity.memoryMb} MB: worker.admission times its overcommit)`,
          'InvalidProfile',
        );
      }
      await deps.client.workflow.signalWithStart<typeof admissionWorkflow, [SlotRequest]>('admissionWorkflow', {
        ...admissionStart(deps.config),
        signal: requestSlotSignal,
        signalArgs: [request],
      });
    },

    /** The workflow ids among these whose workflow has ended (or that Temporal no longer knows). */
    async endedWorkflows(input: { workflowIds: string[] }): Promise<string[]> {
      const open = await Promise.all(input.workflowIds.map((id) => deps.workflowOpen(id)));
      return input.workflowIds.filter((_, i) => !open[i]);
    },
  };
}

export type AdmissionActivities = ReturnType<typeof createAdmissionActivities>;
