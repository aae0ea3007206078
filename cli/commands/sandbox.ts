// `agentlab sandbox new | list | show | destroy | start | stop | revert | snapshot | shell | ssh | reconcile | prune |
// lease renew`.
import type { Command } from 'commander';
import {
  CLEAN_SNAPSHOT,
  describeQuery,
  destroyUpdate,
  renewLeaseUpdate,
  revertUpdate,
  startUpdate,
  stopUpdate,
  type JobDescription,
} from '../../common/contract';
import { describeIssues, durationSchema } from '../../common/schemas';
import { SANDBOX_STATES } from '../../common/states';
import { listJobs, liveHandle, resolveJobId, type ListedJob } from '../context';
import { ExitCode, usageError } from '../errors';
import { followJob, sandboxSettled } from '../follow';
import { formatTime, printFields, printJson, printTable, progress } from '../output';
import { confirm } from '../confirm';
import { runAction } from '../run-action';
import { reconcileWorkflow } from '../../workflows/reconcile-workflow';
import { buildJobRequest, jobDocument, startJob } from './job';
import { registerSnapshotCommands } from './sandbox-snapshot';
import { registerAccessCommands } from './sandbox-access';

function sandboxDocument(d: JobDescription) {
  const doc = jobDocument(d);
  return { ...doc.sandbox, jobId: d.jobId, jobStatus: d.jobStatus, timeline: doc.timeline };
}

export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('manage sandboxes (by VMID or job id)');

  sandbox
    .command('new')
    .description('create a sandbox without a job; it lives until its lease expires or it is destroyed')
    .option('--profile <name>', 'sandbox profile', 'local')
    .option('--ttl <duration>', "lease, e.g. 30m or 2h (default: the profile's)")
    .option('--node <node>', 'run on this worker host')
    .option('--workspace <name>', 'attach this persistent workspace at /workspace')
    .option('--no-wait', 'with --workspace: fail at once while another sandbox holds it, instead of waiting')
    .option('--id <id>', 'choose the id')
    .option('--detach', 'return at once')
    .option('--json', 'print one JSON document')
    .action(
      runAction(
        async (
          ctx,
          options: {
            profile: string;
            ttl?: string;
            node?: string;
            id?: string;
            detach?: boolean;
            workspace?: string;
            wait?: boolean;
          },
        ) => {
          const request = await buildJobRequest(ctx, { ...options, requireTask: false });
          await startJob(ctx, request);
          if (options.detach) {
            if (ctx.json) printJson({ jobId: request.jobId, vmid: null, state: 'REQUESTED' });
            else process.stdout.write(request.jobId + '\n');
            return ExitCode.ok;
          }
          const d = await followJob(await ctx.client(), request.jobId, sandboxSettled, { quiet: ctx.json });
          if (ctx.json) printJson(sandboxDocument(d));
          else process.stdout.write(`${d.vmid ?? '-'}\t${d.state}\t${d.jobId}\n`);
          return d.state === 'RUNNING' ? ExitCode.ok : ExitCode.failed;
        },
      ),
    );

  sandbox
    .command('list')
    .description('list sandboxes (live ones unless --all)')
    .option('--all', 'include destroyed and failed sandboxes')
    .option('--state <state>', `only this state (${SANDBOX_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { all?: boolean; state?: string; limit: string }) => {
        const filters: string[] = [];
        if (options.state) {
          if (!(SANDBOX_STATES as readonly string[]).includes(options.state))
            throw usageError(`--state: expected one of ${SANDBOX_STATES.join(', ')}`);
          filters.push(`AgentlabState = "${options.state}"`);
        } else if (!options.all) {
          filters.push('ExecutionStatus = "Running"');
        }
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit <= 0) throw usageError('--limit: expected a positive integer');
        const sandboxes = await listJobs(await ctx.client(), filters.join(' AND '), limit);
        const row = (s: ListedJob) => [s.vmid, s.state, s.jobId, s.profile, s.node, formatTime(s.leaseExpiresAt)];
        if (ctx.json)
          printJson({
            sandboxes: sandboxes.map((s) => ({
              vmid: s.vmid ?? null,
              state: s.state,
              jobId: s.jobId,
              jobStatus: s.jobStatus,
              profile: s.profile,
              node: s.node ?? null,
              leaseExpiresAt: formatTime(s.leaseExpiresAt) ?? null,
            })),
          });
        else printTable(['VMID', 'STATE', 'JOB', 'PROFILE', 'NODE', 'LEASE EXPIRES'], sandboxes.map(row));
        return ExitCode.ok;
      }),
    );

  sandbox
    .command('show <sandbox>')
    .description('show a sandbox (VMID or job id)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, _options, ref: string) => {
        const client = await ctx.client();
        const d = await client.workflow.getHandle(await resolveJobId(client, ref)).query(describeQuery);
        if (ctx.json) printJson(sandboxDocument(d));
        else {
          printFields([
            ['VMID', d.vmid],
            ['State', d.state],
            ['Job', `${d.jobId} (${d.jobStatus})`],
            ['Profile', d.profile],
            ['Node', d.node],
            ['Address', d.address],
            ['Lease expires', formatTime(d.leaseExpiresAt)],
            ['Keepalive', d.keepalive ? 'yes' : 'no'],
            ['Snapshots', (d.snapshots ?? []).map((s) => s.name).join(', ') || 'none'],
            [
              'Clean snapshot',
              d.cleanSnapshot ? 'yes' : `no${d.cleanSnapshotError ? ` (${d.cleanSnapshotError})` : ''}`,
            ],
          ]);
          printTable(
            ['STATE', 'AT', 'NOTE'],
            d.timeline.map((t) => [t.state, formatTime(t.at), t.note]),
          );
        }
        return ExitCode.ok;
      }),
    );

  sandbox
    .command('destroy <sandbox>')
    .description('destroy a sandbox (READY, RUNNING or STOPPED; other states need --force)')
    .option('--force', 'destroy in any state (e.g. TIMEOUT or FAILED)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { force?: boolean; yes?: boolean }, ref: string) => {
        const handle = await liveHandle(ctx, ref);
        await confirm(`destroy the sandbox of job ${handle.workflowId}`, options.yes);
        const { state } = await handle.executeUpdate(destroyUpdate, {
          args: [{ force: options.force === true }], // the message says "by operator" already
        });
        if (!ctx.json)
          progress(
            `destroy requested for sandbox of job ${handle.workflowId} (was ${state}); teardown runs in the workflow`,
          );
        else printJson({ jobId: handle.workflowId, requested: true, previousState: state });
        return ExitCode.ok;
      }),
    );

  for (const [name, update, description] of [
    ['stop', stopUpdate, 'power a READY or RUNNING sandbox off'],
    ['start', startUpdate, 'boot a STOPPED sandbox again'],
  ] as const) {
    sandbox
      .command(`${name} <sandbox>`)
      .description(description)
      .option('--json', 'print one JSON document')
      .action(
        runAction(async (ctx, _options, ref: string) => {
          const handle = await liveHandle(ctx, ref);
          const { state } = await handle.executeUpdate(update, { args: [] });
          if (ctx.json) printJson({ jobId: handle.workflowId, state });
          else progress(`sandbox of job ${handle.workflowId} is ${state}`);
          return ExitCode.ok;
        }),
      );
  }

  sandbox
    .command('revert <sandbox>')
    .description('roll a READY, RUNNING or STOPPED sandbox back to its clean snapshot (taken after first boot)')
    .option('--restart', 'boot it again afterwards (default when it was not STOPPED)')
    .option('--no-restart', 'leave it STOPPED (default when it was STOPPED)')
    .option('--force', 'revert even while its job is RUNNING (the agent loses everything it wrote)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { restart?: boolean; force?: boolean; yes?: boolean }, ref: string) => {
        const handle = await liveHandle(ctx, ref);
        // Only the state at this moment picks the default; the workflow validates the request itself.
        const restart = options.restart ?? (await handle.query(describeQuery)).state !== 'STOPPED';
        await confirm(
          `revert the sandbox of job ${handle.workflowId} to its clean snapshot, losing everything written since`,
          options.yes,
        );
        if (!ctx.json)
          progress(`reverting the sandbox of job ${handle.workflowId}${restart ? ' and booting it again' : ''}`);
        const { state } = await handle.executeUpdate(revertUpdate, {
          args: [{ force: options.force === true, restart }],
        });
        if (ctx.json) printJson({ jobId: handle.workflowId, state, snapshot: CLEAN_SNAPSHOT, restarted: restart });
        else progress(`sandbox of job ${handle.workflowId} reverted to its ${CLEAN_SNAPSHOT} snapshot; it is ${state}`);
        return ExitCode.ok;
      }),
    );

  registerSnapshotCommands(sandbox);
  registerAccessCommands(sandbox);

  sandbox
    .command('reconcile')
    .description("destroy orphans now: VMs of ours whose job workflow has ended (the host's Schedule does it too)")
    .option('--node <node>', "the host to reconcile (default: this config's node)")
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { node?: string }) => {
        const { config } = ctx;
        const node = options.node ?? config.node;
        const client = await ctx.client();
        const reports = await client.workflow.execute(reconcileWorkflow, {
          workflowId: `reconcile-${node}-${Date.now()}`,
          taskQueue: config.temporal.taskQueue,
          args: [{ node, backends: config.worker.backends }],
          workflowExecutionTimeout: '15m',
        });
        if (ctx.json) printJson({ reports });
        else {
          const vmids = (list: number[]) => (list.length ? list.join(' ') : '-');
          printTable(
            ['NODE', 'BACKEND', 'CHECKED', 'DESTROYED', 'KEPT', 'FAILED'],
            reports.map((r) => [
              r.node,
              r.backend,
              String(r.checked),
              vmids(r.destroyed),
              vmids(r.kept),
              r.failed.map((f) => `${f.vmid}: ${f.reason}`).join('; ') || '-',
            ]),
          );
        }
        return reports.some((r) => r.failed.length > 0) ? ExitCode.failed : ExitCode.ok;
      }),
    );

  sandbox
    .command('prune')
    .description('destroy every TIMEOUT sandbox whose teardown did not finish (the VM may be gone)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { yes?: boolean }) => {
        const client = await ctx.client();
        const stuck = await listJobs(client, 'AgentlabState = "TIMEOUT" AND ExecutionStatus = "Running"', 1000);
        if (stuck.length > 0) await confirm(`destroy ${stuck.length} TIMEOUT sandbox(es)`, options.yes);
        const pruned: string[] = [];
        for (const s of stuck) {
          await client.workflow
            .getHandle(s.jobId)
            .executeUpdate(destroyUpdate, { args: [{ force: true, reason: 'prune' }] });
          pruned.push(s.jobId);
        }
        if (ctx.json) printJson({ pruned });
        else progress(pruned.length ? `destroy requested for ${pruned.join(', ')}` : 'no TIMEOUT sandboxes to prune');
        return ExitCode.ok;
      }),
    );

  sandbox
    .command('lease')
    .description('manage a sandbox lease')
    .command('renew <sandbox>')
    .description('set the lease to expire --ttl from now (RUNNING only)')
    .requiredOption('--ttl <duration>', 'new lease length from now, e.g. 30m or 2h')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { ttl: string }, ref: string) => {
        const ttl = durationSchema.safeParse(options.ttl);
        if (!ttl.success) throw usageError(`--ttl: ${describeIssues(ttl.error)}`);
        const handle = await liveHandle(ctx, ref);
        const { leaseExpiresAt } = await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: ttl.data }] });
        if (ctx.json) printJson({ jobId: handle.workflowId, leaseExpiresAt: formatTime(leaseExpiresAt) });
        else progress(`lease of job ${handle.workflowId} now expires at ${formatTime(leaseExpiresAt)}`);
        return ExitCode.ok;
      }),
    );
}
