// The jobs layer every job and sandbox command goes through: building and starting a job, listing jobs,
// resolving what the operator typed (a job id or a VMID) and describing a job. A test can hand a command a
// subclass of its own (cli/run-action.ts CliHost), so the command's parsing and output run without a server.
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { describeQuery, SearchAttributes, type JobDescription, type JobRequest } from '../common/contract';
import { jobStartOptions } from '../common/job-start';
import type { SandboxState } from '../common/states';
import { placesInLine, type JobInLine } from './admission-line';
import type { CliContext } from './context';
import { notFound, rejected, usageError } from './errors';
import { listJobs, type ListedJob } from './job-listing';
import { buildJobRequest, type JobRequestOptions } from './job-request';

export type { ListedJob } from './job-listing';
export type { JobRequestOptions } from './job-request';

export class Jobs {
  constructor(protected readonly ctx: CliContext) {}

  /** Builds and validates the request from a command's flags; nothing is created when this throws. */
  buildRequest(options: JobRequestOptions & { requireTask: boolean }): Promise<JobRequest> {
    return buildJobRequest(this.ctx, options);
  }

  async start(request: JobRequest): Promise<void> {
    const client = await this.ctx.client();
    try {
      await client.workflow.start('jobWorkflow', jobStartOptions(request, this.ctx.config.temporal.taskQueue));
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw usageError(`--id: job ${request.jobId} already exists`);
      throw err;
    }
  }

  /** Jobs newest first; `query` is a visibility filter ANDed with "is a job". */
  async list(query: string, limit: number): Promise<ListedJob[]> {
    return listJobs(await this.ctx.client(), query, limit);
  }

  /** Accepts a job id or a VMID; a VMID names its live sandbox, else the newest that had it. */
  async resolve(ref: string): Promise<string> {
    if (!/^\d+$/.test(ref)) return ref;
    const vmid = Number(ref);
    const running = await this.list(`AgentlabVmid = ${vmid} AND ExecutionStatus = "Running"`, 1);
    const match = running[0] ?? (await this.list(`AgentlabVmid = ${vmid}`, 1))[0];
    if (!match) throw notFound(`no sandbox with VMID ${vmid}`);
    return match.jobId;
  }

  /** The job's own account of itself (the `describe` query: needs a worker). */
  async describe(jobId: string): Promise<JobDescription> {
    return (await this.handle(jobId)).query(describeQuery);
  }

  /** Places in line (1 = next) of the jobs among these that wait for their host's capacity, by job id. */
  async placesInLine(jobs: JobInLine[]): Promise<Map<string, number>> {
    return placesInLine(await this.ctx.client(), jobs);
  }

  async handle(jobId: string): Promise<WorkflowHandle> {
    return (await this.ctx.client()).workflow.getHandle(jobId);
  }

  /** A closed workflow answers no messages: say what state it ended in instead of a gRPC error. */
  async liveHandle(ref: string): Promise<WorkflowHandle> {
    const jobId = await this.resolve(ref);
    const handle = await this.handle(jobId);
    const execution = await handle.describe();
    if (execution.status.name !== 'RUNNING') {
      const state = execution.typedSearchAttributes.get(SearchAttributes.state) as SandboxState | undefined;
      throw rejected(
        `sandbox of job ${jobId} is ${state ?? 'gone'}: its workflow has ended (${execution.status.name})`,
      );
    }
    return handle;
  }
}
