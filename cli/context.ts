// What every command needs: the config, a lazily connected Temporal client, and the output mode.
import type { Client } from '@temporalio/client';
// The SDK's own readers of a raw execution and of a memo; not re-exported from the package roots.
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers';
import { decodeMapFromPayloads } from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { temporal } from '@temporalio/proto';
import { loadConfig, type AgentlabConfig } from '../common/config';
import { SearchAttributes } from '../common/contract';
import type { JobStatus, SandboxState } from '../common/states';
import { connectClient } from '../common/temporal';
import { notFound, rejected } from './errors';

export class CliContext {
  private configCache?: AgentlabConfig;
  private clientCache?: Promise<Client>;

  constructor(readonly json: boolean) {}

  get config(): AgentlabConfig {
    this.configCache ??= loadConfig();
    return this.configCache;
  }

  client(): Promise<Client> {
    this.clientCache ??= connectClient(this.config);
    return this.clientCache;
  }

  async close(): Promise<void> {
    const client = await this.clientCache?.catch(() => undefined); // a failed connect has nothing to close
    await client?.connection.close().catch(() => undefined);
  }
}

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

/** Accepts a job id or a VMID; a VMID names its live sandbox, else the newest that had it. */
export async function resolveJobId(client: Client, ref: string): Promise<string> {
  if (!/^\d+$/.test(ref)) return ref;
  const vmid = Number(ref);
  const running = await listJobs(client, `AgentlabVmid = ${vmid} AND ExecutionStatus = "Running"`, 1);
  const match = running[0] ?? (await listJobs(client, `AgentlabVmid = ${vmid}`, 1))[0];
  if (!match) throw notFound(`no sandbox with VMID ${vmid}`);
  return match.jobId;
}

/** A closed workflow answers no messages: say what state it ended in instead of a gRPC error. */
export async function liveHandle(ctx: CliContext, ref: string) {
  const client = await ctx.client();
  const jobId = await resolveJobId(client, ref);
  const handle = client.workflow.getHandle(jobId);
  const execution = await handle.describe();
  if (execution.status.name !== 'RUNNING') {
    const state = execution.typedSearchAttributes.get(SearchAttributes.state) as SandboxState | undefined;
    throw rejected(`sandbox of job ${jobId} is ${state ?? 'gone'}: its workflow has ended (${execution.status.name})`);
  }
  return handle;
}
