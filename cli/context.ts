// What every command needs: the config, a lazily connected Temporal client, and the output mode.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { loadConfig, type AgentlabConfig } from '../common/config';
import { SearchAttributes } from '../common/contract';
import type { JobStatus, SandboxState } from '../common/states';
import { connectClient } from '../common/temporal';
import { notFound } from './errors';

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
  startedAt: number;
  closedAt?: number;
  executionStatus: string;
}

export function toListedJob(info: WorkflowExecutionInfo): ListedJob {
  const sa = info.typedSearchAttributes;
  const memo = (info.memo ?? {}) as Record<string, string | undefined>;
  return {
    jobId: info.workflowId,
    state: sa.get(SearchAttributes.state) as SandboxState | undefined,
    jobStatus: sa.get(SearchAttributes.jobStatus) as JobStatus | undefined,
    profile: sa.get(SearchAttributes.profile),
    vmid: sa.get(SearchAttributes.vmid),
    node: sa.get(SearchAttributes.node),
    leaseExpiresAt: sa.get(SearchAttributes.leaseExpiresAt)?.getTime(),
    repo: memo.repo,
    task: memo.task,
    startedAt: info.startTime.getTime(),
    closedAt: info.closeTime?.getTime(),
    executionStatus: info.status.name,
  };
}

export async function listJobs(client: Client, query: string, limit: number): Promise<ListedJob[]> {
  const jobs: ListedJob[] = [];
  for await (const info of client.workflow.list({
    query: `WorkflowType = "jobWorkflow"${query ? ` AND ${query}` : ''}`,
  })) {
    jobs.push(toListedJob(info));
    if (jobs.length >= limit) break;
  }
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
