// `agentlab workspace create | list | show | destroy`: persistent workspaces, each its own workflow.
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import { SearchAttributes } from '../../common/contract';
import { describeIssues, workspaceNameSchema, workspaceSizeSchema } from '../../common/schemas';
import {
  describeWorkspaceQuery,
  destroyWorkspaceUpdate,
  workspaceWorkflowId,
  type WorkspaceDescription,
  type WorkspaceInput,
} from '../../common/workspace';
import { confirm } from '../confirm';
import type { CliContext } from '../context';
import { ExitCode, notFound, rejected, usageError } from '../errors';
import { formatTime, printFields, printJson, printTable, progress } from '../output';
import { runAction } from '../run-action';

function parseName(name: string): string {
  const parsed = workspaceNameSchema.safeParse(name);
  if (!parsed.success) throw usageError(`<name>: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** The workspace as its workflow tells it; not found when there is no such workflow. */
export async function describeWorkspace(client: Client, name: string): Promise<WorkspaceDescription> {
  try {
    return await client.workflow.getHandle(workspaceWorkflowId(name)).query(describeWorkspaceQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notFound(`workspace ${name} not found (agentlab workspace list)`);
    throw err;
  }
}

export function workspaceDocument(d: WorkspaceDescription) {
  return {
    name: d.name,
    status: d.status,
    sizeGb: d.sizeGb,
    node: d.node,
    backend: d.backend,
    profile: d.profile,
    createdAt: formatTime(d.createdAt),
    holder: d.holder ? { jobId: d.holder.jobId, since: formatTime(d.holder.since) } : null,
    waiting: d.waiting.map((w) => ({ jobId: w.jobId, since: formatTime(w.since) })),
    attachments: d.attachments.map((a) => ({
      jobId: a.jobId,
      vmid: a.vmid ?? null,
      grantedAt: formatTime(a.grantedAt),
      releasedAt: formatTime(a.releasedAt) ?? null,
      ...(a.note ? { note: a.note } : {}),
    })),
    error: d.error ?? null,
  };
}

async function createWorkspace(
  ctx: CliContext,
  name: string,
  options: { size: string; node?: string; profile: string },
): Promise<WorkspaceDescription> {
  const size = workspaceSizeSchema.safeParse(options.size);
  if (!size.success) throw usageError(`--size: ${describeIssues(size.error)}`);
  const profile = ctx.config.profiles.get(options.profile);
  if (!profile) {
    const known = [...ctx.config.profiles.keys()].join(', ');
    throw usageError(`--profile: unknown profile "${options.profile}" (known: ${known})`);
  }
  if (options.node !== undefined && profile.node !== undefined && options.node !== profile.node) {
    throw usageError(`--node: profile ${profile.name} runs its sandboxes on node ${profile.node} only`);
  }
  const input: WorkspaceInput = {
    name,
    backend: profile.backend,
    profile: profile.name,
    node: options.node ?? profile.node ?? ctx.config.node,
    sizeGb: size.data,
    createdAt: Date.now(),
    reclaimIntervalMs: ctx.config.worker.admission.reclaimIntervalMs,
    continueAsNewAfterEvents: ctx.config.temporal.continueAsNewAfterEvents,
  };
  const client = await ctx.client();
  try {
    await client.workflow.start('workspaceWorkflow', {
      workflowId: workspaceWorkflowId(name),
      taskQueue: ctx.config.temporal.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      // A destroyed workspace's name may be used again; its storage is gone with it.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      staticSummary: `workspace ${name}: ${input.sizeGb} GiB on ${input.node} (${input.backend})`,
      typedSearchAttributes: [
        { key: SearchAttributes.state, value: 'CREATING' },
        { key: SearchAttributes.node, value: input.node },
        { key: SearchAttributes.profile, value: input.profile },
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw rejected(`workspace ${name} exists already`);
    throw err;
  }
  // Created once its storage exists on the node (a worker there makes it).
  for (;;) {
    const d = await describeWorkspace(client, name);
    if (d.status !== 'CREATING') return d;
    await sleep(200);
  }
}

interface ListedWorkspace {
  name: string;
  status: string;
  node?: string;
  profile?: string;
  holder?: string;
  sizeGb?: number;
}

async function listWorkspaces(client: Client, all: boolean): Promise<ListedWorkspace[]> {
  const filter = all ? 'ExecutionStatus != "ContinuedAsNew"' : 'ExecutionStatus = "Running"';
  const listed: ListedWorkspace[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType = "workspaceWorkflow" AND ${filter}` })) {
    const name = w.workflowId.replace(/^agentlab-workspace-/, '');
    const fromSearch: ListedWorkspace = {
      name,
      status: w.typedSearchAttributes.get(SearchAttributes.state) ?? w.status.name,
      node: w.typedSearchAttributes.get(SearchAttributes.node),
      profile: w.typedSearchAttributes.get(SearchAttributes.profile),
    };
    // The holder and size come from the workflow itself; without a worker the list still shows the rest.
    const d = await client.workflow
      .getHandle(w.workflowId, w.runId)
      .query(describeWorkspaceQuery)
      .catch(() => undefined);
    listed.push(d ? { ...fromSearch, status: d.status, sizeGb: d.sizeGb, holder: d.holder?.jobId } : fromSearch);
  }
  return listed;
}

export function registerWorkspaceCommands(program: Command): void {
  const workspace = program
    .command('workspace')
    .description('persistent workspaces: storage that outlives sandboxes, mounted at /workspace');

  workspace
    .command('create <name>')
    .description('create a workspace (attach it with `job run --workspace` or `sandbox new --workspace`)')
    .option('--size <size>', 'its size, e.g. 20G', '20G')
    .option('--node <node>', "the host that keeps it (default: the profile's, else this config's node)")
    .option('--profile <name>', 'the profile whose backend keeps it (its sandboxes can attach it)', 'local')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { size: string; node?: string; profile: string }, rawName: string) => {
        const d = await createWorkspace(ctx, parseName(rawName), options);
        if (ctx.json) printJson(ctx.io, workspaceDocument(d));
        else if (d.status !== 'FAILED')
          progress(ctx.io, `workspace ${d.name}: ${d.sizeGb} GiB on node ${d.node} (${d.status})`);
        if (d.status === 'FAILED') throw rejected(`workspace ${d.name} could not be created: ${d.error ?? 'unknown'}`);
        return ExitCode.ok;
      }),
    );

  workspace
    .command('list')
    .description('list workspaces (live ones unless --all)')
    .option('--all', 'include destroyed and failed workspaces')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { all?: boolean }) => {
        const listed = await listWorkspaces(await ctx.client(), options.all === true);
        if (ctx.json) printJson(ctx.io, { workspaces: listed.map((w) => ({ ...w, holder: w.holder ?? null })) });
        else
          printTable(
            ctx.io,
            ['NAME', 'STATUS', 'SIZE', 'NODE', 'PROFILE', 'HOLDER'],
            listed.map((w) => [w.name, w.status, w.sizeGb && `${w.sizeGb}G`, w.node, w.profile, w.holder]),
          );
        return ExitCode.ok;
      }),
    );

  workspace
    .command('show <name>')
    .description('show a workspace: state, size, node, holder, the line waiting for it, and every attachment')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, _options, rawName: string) => {
        const d = await describeWorkspace(await ctx.client(), parseName(rawName));
        if (ctx.json) printJson(ctx.io, workspaceDocument(d));
        else {
          printFields(ctx.io, [
            ['Workspace', d.name],
            ['Status', d.status],
            ['Size', `${d.sizeGb} GiB`],
            ['Node', `${d.node} (${d.backend}, profile ${d.profile})`],
            ['Created', formatTime(d.createdAt)],
            ['Holder', d.holder ? `job ${d.holder.jobId} since ${formatTime(d.holder.since)}` : undefined],
            ['Waiting', d.waiting.map((w) => w.jobId).join(', ')],
            ['Error', d.error],
          ]);
          printTable(
            ctx.io,
            ['JOB', 'VMID', 'ATTACHED', 'RELEASED', 'NOTE'],
            d.attachments.map((a) => [a.jobId, a.vmid, formatTime(a.grantedAt), formatTime(a.releasedAt), a.note]),
          );
        }
        return ExitCode.ok;
      }),
    );

  workspace
    .command('destroy <name>')
    .description('delete a workspace and everything in it (refused while a sandbox holds or awaits it)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { yes?: boolean }, rawName: string) => {
        const name = parseName(rawName);
        const client = await ctx.client();
        const before = await describeWorkspace(client, name); // not found before the question
        if (before.status === 'DESTROYED') throw rejected(`workspace ${name} is already DESTROYED`);
        await confirm(`destroy workspace ${name} and everything in it`, options.yes);
        const { status } = await client.workflow
          .getHandle(workspaceWorkflowId(name))
          .executeUpdate(destroyWorkspaceUpdate, { args: [{ reason: 'workspace destroy' }] });
        if (ctx.json) printJson(ctx.io, { name, status });
        else progress(ctx.io, `workspace ${name} is ${status}`);
        return ExitCode.ok;
      }),
    );
}
