// Listing jobs through Temporal's visibility store, reading each execution as the SDK does but decoding its memo
// on its own, so that one memo this client cannot decrypt does not fail the whole listing.
import type { Client } from '@temporalio/client';
// The SDK's own readers of a raw execution and of a memo; not re-exported from the package roots.
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers';
import { decodeMapFromPayloads } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { temporal } from '@temporalio/proto';
import { SearchAttributes } from '../common/contract';
import type { JobStatus, SandboxState } from '../common/states';

/** A job or sandbox as the visibility store shows it (works without a worker). */
export interface ListedJob {
  jobId: string;
  state?: SandboxState;
  jobStatus?: JobStatus;
  profile?: string;
  vmid?: number;
  node?: string;
  leaseExpiresAt?: number;
  repo?: string;
  task?: string;
  /** Why repo and task are missing: the memo was encrypted with a key this client does not hold. */
  memoUnreadable?: string;
  startedAt: number;
  closedAt?: number;
  executionStatus: string;
}

type RawExecution = temporal.api.workflow.v1.IWorkflowExecutionInfo;

/**
 * Decodes the memo of one listed execution. A memo sealed with another key (or with a key this client lacks)
 * must not break the whole listing: the job is still shown from its search attributes, which are never encrypted.
 */
async function readMemo(
  client: Client,
  raw: RawExecution,
): Promise<Pick<ListedJob, 'repo' | 'task' | 'memoUnreadable'>> {
  try {
    const memo = (await decodeMapFromPayloads(client.options.loadedDataConverter, raw.memo?.fields)) ?? {};
    const asText = (value: unknown) => (typeof value === 'string' ? value : undefined);
    return { repo: asText(memo.repo), task: asText(memo.task) };
  } catch (err) {
    return { memoUnreadable: (err as Error).message };
  }
}

async function toListedJob(client: Client, raw: RawExecution): Promise<ListedJob> {
  // The SDK's own reading of an execution, but without the memo: that one is decoded on its own, above.
  const { loadedDataConverter, namespace } = client.options;
  // create(): a message again, so proto3 defaults (on its prototype, not copied by the spread) stay.
  const withoutMemo = temporal.api.workflow.v1.WorkflowExecutionInfo.create({ ...raw, memo: null });
  const info = await executionInfoFromRaw(withoutMemo, loadedDataConverter, raw, namespace);
  const sa = info.typedSearchAttributes;
  return {
    jobId: info.workflowId,
    state: sa.get(SearchAttributes.state) as SandboxState | undefined,
    jobStatus: sa.get(SearchAttributes.jobStatus) as JobStatus | undefined,
    profile: sa.get(SearchAttributes.profile),
    vmid: sa.get(SearchAttributes.vmid),
    node: sa.get(SearchAttributes.node),
    leaseExpiresAt: sa.get(SearchAttributes.leaseExpiresAt)?.getTime(),
    ...(await readMemo(client, raw)),
    startedAt: info.startTime.getTime(),
    closedAt: info.closeTime?.getTime(),
    executionStatus: info.status.name,
  };
}

/** Lists jobs newest first through the raw visibility API, so one unreadable memo cannot fail the listing. */
export async function listJobs(client: Client, query: string, limit: number): Promise<ListedJob[]> {
  const jobs: ListedJob[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      // A continued-as-new run is the same job as its successor: list the job once, as it is now.
      query: `WorkflowType = "jobWorkflow" AND ExecutionStatus != "ContinuedAsNew"${query ? ` AND ${query}` : ''}`,
      pageSize: Math.min(limit, 1000),
      nextPageToken,
    });
    for (const raw of page.executions ?? []) {
      jobs.push(await toListedJob(client, raw));
      if (jobs.length >= limit) return jobs;
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return jobs;
}
