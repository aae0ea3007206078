// Builds and validates a job request from the flags of `job run` and `sandbox new`; nothing is created here.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JobRequest } from '../common/contract';
import { ttlAboveMaximum } from '../common/duration';
import type { Profile } from '../common/config';
import { describeIssues, durationSchema, jobRequestSchema, workspaceNameSchema } from '../common/schemas';
import { heldByText } from '../common/workspace';
import { refProblem, repoUrlProblem } from '../guest/git-input';
import { describeWorkspace } from './commands/workspace';
import type { CliContext } from './context';
import { rejected, usageError } from './errors';
import type { CliIo } from './io';
import { isLocalPathInput, readLocalRepository } from './local-repo';
import { progress } from './output';

/** The flags `job run` and `sandbox new` build a request from. */
export interface JobRequestOptions {
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
  workspace?: string;
  /** `--no-wait`: a workspace another sandbox holds fails the request at once. */
  wait?: boolean;
}

/** Builds and validates the request; nothing is created when this throws. */
export async function buildJobRequest(
  ctx: CliContext,
  options: JobRequestOptions & { requireTask: boolean },
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
    ...(await repositoryFields(ctx.io, options, profile)),
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
  options: Pick<JobRequestOptions, 'workspace' | 'wait' | 'node'>,
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
  io: CliIo,
  options: Pick<JobRequestOptions, 'repo' | 'ref'>,
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
      io,
      `note: ${local.path} has uncommitted changes in ${local.uncommittedFiles} file(s) that the job will not see: ` +
        `it gets the committed state of ${local.ref} (${local.commit.slice(0, 12)})`,
    );
  }
  return { repo: local.path, ref: local.ref, commit: local.commit };
}
