// How a job's workflow is started, by the CLI and by anything else that starts jobs in-process (benchmarks):
// one workflow per job, its ID the job's, the search attributes `job list` filters on from the first moment.
import type { WorkflowStartOptions } from '@temporalio/client';
import { MEMO_TASK_SUMMARY_LENGTH, SearchAttributes, type JobRequest } from './contract';
import { jobStaticMetadata } from './job-metadata';

export function jobStartOptions(request: JobRequest, taskQueue: string) {
  return {
    workflowId: request.jobId,
    taskQueue,
    args: [request] as [JobRequest],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    // The Web UI's summary and details of the job (payloads: encrypted with the codec, like the memo).
    ...jobStaticMetadata(request),
    typedSearchAttributes: [
      { key: SearchAttributes.state, value: 'REQUESTED' },
      { key: SearchAttributes.jobStatus, value: 'QUEUED' },
      { key: SearchAttributes.profile, value: request.profile },
    ],
    memo: {
      ...(request.repo ? { repo: request.repo, ref: request.ref ?? 'HEAD' } : {}),
      ...(request.commit ? { commit: request.commit } : {}),
      ...(request.task ? { task: request.task.slice(0, MEMO_TASK_SUMMARY_LENGTH) } : {}),
    },
  } satisfies WorkflowStartOptions;
}
