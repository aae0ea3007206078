// `agentlab sandbox snapshot save | list | restore`: user snapshots of a sandbox's disks (the original system's
// feature). They need a STOPPED sandbox, or --force on a live one; `clean` stays revert's.
import type { Command } from 'commander';
import { describeQuery, restoreUpdate, snapshotUpdate, type SnapshotRecord } from '../../common/contract';
import { confirm } from '../confirm';
import { CliContext, liveHandle, resolveJobId } from '../context';
import { snapshotNameProblem, userSnapshotNameProblem } from '../../common/snapshot-names';
import { ExitCode, usageError } from '../errors';
import { formatTime, printJson, printTable, progress } from '../output';
import { runAction } from '../run-action';

const snapshotDocument = (s: SnapshotRecord) => ({ name: s.name, at: formatTime(s.at), state: s.state });

export function registerSnapshotCommands(sandbox: Command): void {
  const snapshot = sandbox.command('snapshot').description("save, list and restore a sandbox's own snapshots");

  snapshot
    .command('save <sandbox> <name>')
    .description('snapshot the disks of a STOPPED sandbox (--force: a live one)')
    .option('--force', 'snapshot a READY or RUNNING sandbox (its disks may be mid-write)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx: CliContext, options: { force?: boolean }, ref: string, name: string) => {
        const badName = userSnapshotNameProblem(name);
        if (badName) throw usageError(badName);
        const handle = await liveHandle(ctx, ref);
        const { snapshot: saved } = await handle.executeUpdate(snapshotUpdate, {
          args: [{ name, force: options.force === true }],
        });
        if (ctx.json) printJson({ jobId: handle.workflowId, snapshot: snapshotDocument(saved) });
        else
          progress(`snapshot ${saved.name} of the sandbox of job ${handle.workflowId} saved (it was ${saved.state})`);
        return ExitCode.ok;
      }),
    );

  snapshot
    .command('list <sandbox>')
    .description("a sandbox's snapshots, oldest first (revert's clean one is not listed)")
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx: CliContext, _options, ref: string) => {
        const client = await ctx.client();
        const jobId = await resolveJobId(client, ref);
        const { snapshots } = await client.workflow.getHandle(jobId).query(describeQuery);
        const listed = snapshots ?? []; // a sandbox from before snapshots has none
        if (ctx.json) printJson({ jobId, snapshots: listed.map(snapshotDocument) });
        else
          printTable(
            ['NAME', 'SAVED', 'STATE'],
            listed.map((s) => [s.name, formatTime(s.at), s.state]),
          );
        return ExitCode.ok;
      }),
    );

  snapshot
    .command('restore <sandbox> <name>')
    .description('roll a STOPPED sandbox back to one of its snapshots (--force: a live one, which is stopped first)')
    .option('--restart', 'boot it again afterwards (default: leave it STOPPED)')
    .option('--force', 'restore a READY or RUNNING sandbox; a job running in it ends FAILED')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(
        async (
          ctx: CliContext,
          options: { restart?: boolean; force?: boolean; yes?: boolean },
          ref: string,
          name: string,
        ) => {
          // Any name Proxmox could hold, `clean` too: the workflow says where that one comes from.
          const badName = snapshotNameProblem(name);
          if (badName) throw usageError(badName);
          const handle = await liveHandle(ctx, ref);
          await confirm(
            `restore the sandbox of job ${handle.workflowId} to snapshot ${name}, losing everything written since`,
            options.yes,
          );
          const restart = options.restart === true;
          const { state } = await handle.executeUpdate(restoreUpdate, {
            args: [{ name, force: options.force === true, restart }],
          });
          if (ctx.json) printJson({ jobId: handle.workflowId, state, snapshot: name, restarted: restart });
          else progress(`sandbox of job ${handle.workflowId} restored to snapshot ${name}; it is ${state}`);
          return ExitCode.ok;
        },
      ),
    );
}
