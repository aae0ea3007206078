// `agentlab job run | show | list`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Command } from 'commander';
import { describeQuery, type JobDescription, type JobRequest } from '../../common/contract';
import { ttlAboveMaximum } from '../../common/duration';
import { jobStartOptions } from '../../common/job-start';
import type { Profile } from '../../common/config';
import { describeIssues, durationSchema, jobRequestSchema, workspaceNameSchema } from '../../common/schemas';
import { heldByText } from '../../common/workspace';
import { describeWorkspace } from './workspace';
import { refProblem, repoUrlProblem } from '../../guest/git-input';
import { isLocalPathInput, readLocalRepository } from '../local-repo';
import { JOB_STATUSES, SANDBOX_STATES } from '../../common/states';
import { CliContext, listJobs, resolveJobId } from '../context';
import { ExitCode, rejected, usageError } from '../errors';
import { followJob, jobSettled } from '../follow';
import { formatTime, printFields, printJson, printTable, progress } from '../output';
import { runAction } from '../run-action';
import { confirm } from '../confirm';
import { jobFilesFor } from '../job-files';
import { registerJobApplyCommand } from './job-apply';
import { registerJobDataCommands } from './job-data';
import { placesInLine } from '../admission-line';
import { workflowWebUiUrl } from '../../common/web-ui';

interface RunOptions {
  repo?: string;
  task?: string;
  taskFile?: string;
  profile: string;
  ref?: string;
  ttl?: string;
  keepalive?: boolean;
  agentCommand?: string;
  node?: string;
  id?: string;
  detach?: boolean;
  workspace?: string;
  /** `--no-wait`: a workspace another sandbox holds fails the request at once. */
  wait?: boolean;
}

/** Builds and validates the request; nothing is created when this throws. */
export async function buildJobRequest(
  ctx: CliContext,
  options: RunOptions & { requireTask: boolean },
): Promise<JobRequest> {
  if (options.task !== undefined && options.taskFile !== undefined)
    throw usageError('give --task or --task-file, not both');
  let task = options.task;
  if (options.taskFile !== undefined) {
    try {
      task = readFileSync(options.taskFile, 'utf8');
    } catch (err) {
      throw usageError(`--task-file: cannot read ${options.taskFile}: ${(err as Error).message}`);
    }
  }
  if (options.requireTask) {
    if (!options.repo) throw usageError('--repo is required');
    if (!task) throw usageError('--task or --task-file is required');
  }
  const profile = ctx.config.profiles.get(options.profile);
  if (!profile) {
    throw usageError(
      `--profile: unknown profile "${options.profile}" (known: ${[...ctx.config.profiles.keys()].join(', ')})`,
    );
  }
  let ttlMs: number | undefined;
  if (options.ttl !== undefined) {
    const parsed = durationSchema.safeParse(options.ttl);
    if (!parsed.success) throw usageError(`--ttl: ${describeIssues(parsed.error)}`);
    ttlMs = parsed.data;
    if (ttlMs > profile.maxTtl) {
      throw usageError(`--ttl: ${ttlAboveMaximum(options.ttl, profile.maxTtl, profile.name)}`);
    }
  }
  const request = {
    jobId: options.id ?? `job-${randomBytes(5).toString('hex')}`,
    task,
    profile: options.profile,
    ttlMs,
    keepalive: options.keepalive,
    agentCommand: options.agentCommand,
    node: options.node,
    ...(await repositoryFields(options, profile)),
    ...(options.workspace !== undefined ? await workspaceFields(ctx, options, profile) : {}),
  };
  const parsed = jobRequestSchema.safeParse(JSON.parse(JSON.stringify(request)));
  if (!parsed.success) {
    const flagNames: Record<string, string> = { jobId: 'id', agentCommand: 'agent-command', ttlMs: 'ttl' };
    const message = parsed.error.issues
      .map((issue) => {
        const field = String(issue.path[0] ?? '');
        return `--${flagNames[field] ?? field}: ${issue.message}`;
      })
      .join('; ');
    throw usageError(message);
  }
  return parsed.data;
}

/**
 * `--workspace` as the request carries it, checked against the workspace as it is now (the workflow checks
 * again when it asks for it): the sandbox runs on the workspace's node, and `--no-wait` fails here at once.
 */
async function workspaceFields(
  ctx: CliContext,
  options: Pick<RunOptions, 'workspace' | 'wait' | 'node'>,
  profile: Profile,
): Promise<Pick<JobRequest, 'workspace' | 'node'>> {
  const name = workspaceNameSchema.safeParse(options.workspace);
  if (!name.success) throw usageError(`--workspace: ${describeIssues(name.error)}`);
  const ws = await describeWorkspace(await ctx.client(), name.data);
  if (!['AVAILABLE', 'ATTACHED'].includes(ws.status))
    throw rejected(`--workspace: workspace ${ws.name} is ${ws.status}`);
  if (ws.backend !== profile.backend) {
    throw usageError(
      `--workspace: workspace ${ws.name} is for the ${ws.backend} backend, not ${profile.name}'s (${profile.backend})`,
    );
  }
  const node = options.node ?? ws.node;
  if (node !== ws.node || (profile.node !== undefined && profile.node !== ws.node)) {
    throw usageError(
      `--workspace: workspace ${ws.name} is on node ${ws.node}; the sandbox would run on ${profile.node ?? node}`,
    );
  }
  const wait = options.wait !== false;
  if (!wait && ws.holder) throw rejected(`--no-wait: ${heldByText(ws.name, ws.holder)}`);
  return { node, workspace: { name: ws.name, ...(wait ? {} : { wait: false }) } };
}

/**
 * `--repo` and `--ref` as the request carries them. A path is read here, as the CLI's user: the request
 * names the repository's top level and the commit `--ref` is now, so the job sees exactly that.
 */
async function repositoryFields(
  options: Pick<RunOptions, 'repo' | 'ref'>,
  profile: Profile,
): Promise<Pick<JobRequest, 'repo' | 'ref' | 'commit'>> {
  if (options.repo === undefined) {
    if (options.ref !== undefined) throw usageError('--ref: needs --repo');
    return {};
  }
  if (options.ref !== undefined) {
    const problem = refProblem(options.ref);
    if (problem) throw usageError(`--ref: ${problem}`);
  }
  if (options.repo.startsWith('-') || !isLocalPathInput(options.repo)) {
    const problem = repoUrlProblem(options.repo, { allowLoopbackHttp: profile.backend === 'local' });
    if (problem) throw usageError(`--repo: ${problem}`);
    return { repo: options.repo, ref: options.ref };
  }
  if (profile.backend !== 'local') {
    throw usageError(
      `--repo: ${options.repo} is a path on this machine, which only a local-backend profile can use, not ` +
        `${profile.name} (${profile.backend}): push it to a git server the sandbox can reach`,
    );
  }
  const local = await readLocalRepository(options.repo, options.ref);
  if (local.uncommittedFiles > 0) {
    progress(
      `note: ${local.path} has uncommitted changes in ${local.uncommittedFiles} file(s) that the job will not see: ` +
        `it gets the committed state of ${local.ref} (${local.commit.slice(0, 12)})`,
    );
  }
  return { repo: local.path, ref: local.ref, commit: local.commit };
}

export async function startJob(ctx: CliContext, request: JobRequest): Promise<void> {
  const client = await ctx.client();
  try {
    await client.workflow.start('jobWorkflow', jobStartOptions(request, ctx.config.temporal.taskQueue));
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw usageError(`--id: job ${request.jobId} already exists`);
    throw err;
  }
}

/** `placeInLine`: where the job waits for its host's capacity (1 = next), when it does. */
export function jobDocument(d: JobDescription, placeInLine?: number) {
  return {
    jobId: d.jobId,
    status: d.jobStatus,
    placeInLine: placeInLine ?? null,
    exitCode: d.exitCode ?? null,
    message: d.message ?? null,
    profile: d.profile,
    repo: d.repo ?? null,
    ref: d.ref ?? null,
    workspace: d.workspace?.name ?? null,
    sandbox: {
      vmid: d.vmid ?? null,
      state: d.state,
      node: d.node ?? null,
      address: d.address ?? null,
      leaseExpiresAt: formatTime(d.leaseExpiresAt) ?? null,
      keepalive: d.keepalive,
      cleanSnapshot: d.cleanSnapshot === true,
    },
    timeline: d.timeline.map((t) => ({
      state: t.state,
      at: formatTime(t.at),
      ...(t.note ? { note: t.note } : {}),
      ...(t.signal ? { signal: t.signal } : {}),
      ...(t.access ? { access: t.access } : {}),
    })),
  };
}

export function exitCodeFor(d: JobDescription): number {
  switch (d.jobStatus) {
    case 'COMPLETED':
      return ExitCode.ok;
    case 'TIMEOUT':
      return ExitCode.timedOut;
    default:
      return ExitCode.failed;
  }
}

function printJob(d: JobDescription, placeInLine?: number): void {
  printFields([
    ['Job', d.jobId],
    ['Status', d.jobStatus],
    ['Place in line', placeInLine !== undefined ? `${placeInLine} (waiting for capacity on ${d.node})` : undefined],
    ['Exit code', d.exitCode ?? undefined],
    ['Message', d.message],
    ['Profile', d.profile],
    ['Repo', d.repo ? `${d.repo} @ ${d.ref ?? 'HEAD'}` : undefined],
    ['Workspace', d.workspace ? `${d.workspace.name}${d.workspace.held ? ' (attached)' : ''}` : undefined],
    ['Sandbox', d.vmid !== undefined ? `vmid ${d.vmid} on ${d.node ?? '?'}` : undefined],
    ['State', d.state],
    ['Address', d.address],
    ['Lease expires', formatTime(d.leaseExpiresAt)],
    ['Keepalive', d.keepalive ? 'yes' : 'no'],
  ]);
}

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('run and inspect agent jobs');

  job
    .command('run')
    .description('run an agent on a repository in a fresh sandbox, follow it, exit with its outcome')
    .option(
      '--repo <url|path>',
      'git URL (https, ssh, git), or for local-backend profiles a repository on this machine',
    )
    .option('--task <text>', 'what the agent should do')
    .option('--task-file <file>', 'read the task from a file')
    .option('--profile <name>', 'sandbox profile', 'local')
    .option('--ref <ref>', 'branch, tag or commit to check out (default HEAD)')
    .option('--ttl <duration>', "sandbox lease, e.g. 30m or 2h (default: the profile's)")
    .option('--keepalive', 'keep the sandbox after the job ends (until its lease expires)')
    .option('--agent-command <cmd>', "the agent command to run instead of the profile's")
    .option('--node <node>', 'run on this worker host')
    .option('--workspace <name>', 'attach this persistent workspace at /workspace (the checkout goes there)')
    .option('--no-wait', 'with --workspace: fail at once while another sandbox holds it, instead of waiting')
    .option('--id <jobId>', 'choose the job id')
    .option('--detach', 'start the job and return at once')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: RunOptions) => {
        const request = await buildJobRequest(ctx, { ...options, requireTask: true });
        await startJob(ctx, request);
        const client = await ctx.client();
        if (!ctx.json)
          progress(`job ${request.jobId} started; Web UI: ${workflowWebUiUrl(ctx.config.temporal, request.jobId)}`);
        if (options.detach) {
          const d = await client.workflow
            .getHandle(request.jobId)
            .query(describeQuery)
            .catch(() => undefined);
          if (ctx.json)
            printJson({
              jobId: request.jobId,
              status: d?.jobStatus ?? 'QUEUED',
              sandbox: { vmid: d?.vmid ?? null, state: d?.state ?? 'REQUESTED' },
            });
          else process.stdout.write(request.jobId + '\n');
          return ExitCode.ok;
        }
        const files = jobFilesFor(ctx);
        const final = await followJob(client, request.jobId, jobSettled, {
          quiet: false,
          streamLog: ctx.json ? undefined : (offset) => files.readLogFrom(request.jobId, offset),
        });
        if (ctx.json) printJson(jobDocument(final));
        else {
          progress(
            `job ${final.jobId} ${final.jobStatus}${final.exitCode != null ? ` (exit code ${final.exitCode})` : ''}${final.message ? `: ${final.message}` : ''}`,
          );
          progress(`logs and artifacts: ${ctx.config.dataDir}/jobs/${final.jobId}/`);
        }
        return exitCodeFor(final);
      }),
    );

  job
    .command('cancel <job>')
    .description('cancel a job: the agent stops, teardown destroys its sandbox, status CANCELLED')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { yes?: boolean }, ref: string) => {
        const client = await ctx.client();
        const jobId = await resolveJobId(client, ref);
        const handle = client.workflow.getHandle(jobId);
        const execution = await handle.describe();
        if (execution.status.name !== 'RUNNING')
          throw rejected(`job ${jobId} has already ended (${execution.status.name})`);
        await confirm(`cancel job ${jobId}`, options.yes);
        await handle.cancel();
        if (ctx.json) printJson({ jobId, cancelRequested: true });
        else progress(`cancel requested for job ${jobId}; teardown runs in the workflow`);
        return ExitCode.ok;
      }),
    );

  registerJobDataCommands(job);
  registerJobApplyCommand(job);

  job
    .command('show <job>')
    .description('show a job (by job id or VMID)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, _options, ref: string) => {
        const client = await ctx.client();
        const jobId = await resolveJobId(client, ref);
        const d = await client.workflow.getHandle(jobId).query(describeQuery);
        const place = (await placesInLine(client, [{ ...d, jobId }])).get(jobId);
        if (ctx.json) printJson(jobDocument(d, place));
        else printJob(d, place);
        return ExitCode.ok;
      }),
    );

  job
    .command('list')
    .description('list jobs, newest first')
    .option('--status <status>', `only jobs with this status (${JOB_STATUSES.join(', ')})`)
    .option('--state <state>', `only sandboxes in this state (${SANDBOX_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { status?: string; state?: string; limit: string }) => {
        const filters: string[] = [];
        if (options.status) {
          if (!(JOB_STATUSES as readonly string[]).includes(options.status))
            throw usageError(`--status: expected one of ${JOB_STATUSES.join(', ')}`);
          filters.push(`AgentlabJobStatus = "${options.status}"`);
        }
        if (options.state) {
          if (!(SANDBOX_STATES as readonly string[]).includes(options.state))
            throw usageError(`--state: expected one of ${SANDBOX_STATES.join(', ')}`);
          filters.push(`AgentlabState = "${options.state}"`);
        }
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit <= 0) throw usageError('--limit: expected a positive integer');
        const client = await ctx.client();
        const listed = await listJobs(client, filters.join(' AND '), limit);
        const places = await placesInLine(client, listed);
        const jobs = listed.map((j) => (places.has(j.jobId) ? { ...j, placeInLine: places.get(j.jobId)! } : j));
        if (ctx.json) printJson({ jobs });
        else {
          printTable(
            ['JOB', 'STATUS', 'STATE', 'PROFILE', 'VMID', 'STARTED', 'TASK'],
            jobs.map((j) => [
              j.jobId,
              'placeInLine' in j ? `${j.jobStatus} #${j.placeInLine}` : j.jobStatus,
              j.state,
              j.profile,
              j.vmid,
              formatTime(j.startedAt),
              j.task?.split('\n')[0]?.slice(0, 40) ?? (j.memoUnreadable ? '(encrypted)' : undefined),
            ]),
          );
        }
        return ExitCode.ok;
      }),
    );
}
