// `agentlab sandbox snapshot restore`: roll a sandbox back to one of its own snapshots.
import type { Command } from 'commander';
import { restoreUpdate } from '../../../common/contract';
import { snapshotNameProblem } from '../../../common/snapshot-names';
import { confirm } from '../../confirm';
import type { CliContext } from '../../context';
import { ExitCode, usageError } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export interface RestoreOptions {
  ref: string;
  name: string;
  restart?: boolean;
  force?: boolean;
  yes?: boolean;
}

export async function run(opts: RestoreOptions, ctx: CliContext): Promise<number> {
  const { name } = opts;
  // Any name Proxmox could hold, `clean` too: the workflow says where that one comes from.
  const badName = snapshotNameProblem(name);
  if (badName) throw usageError(badName);
  const handle = await ctx.jobs.liveHandle(opts.ref);
  await confirm(
    `restore the sandbox of job ${handle.workflowId} to snapshot ${name}, losing everything written since`,
    opts.yes,
  );
  const restart = opts.restart === true;
  const { state } = await handle.executeUpdate(restoreUpdate, {
    args: [{ name, force: opts.force === true, restart }],
  });
  if (ctx.json) printJson(ctx.io, { jobId: handle.workflowId, state, snapshot: name, restarted: restart });
  else progress(ctx.io, `sandbox of job ${handle.workflowId} restored to snapshot ${name}; it is ${state}`);
  return ExitCode.ok;
}

export function register(snapshot: Command): void {
  snapshot
    .command('restore <sandbox> <name>')
    .description('roll a STOPPED sandbox back to one of its snapshots (--force: a live one, which is stopped first)')
    .option('--restart', 'boot it again afterwards (default: leave it STOPPED)')
    .option('--force', 'restore a READY or RUNNING sandbox; a job running in it ends FAILED')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(
      runAction((ctx, options: Omit<RestoreOptions, 'ref' | 'name'>, ref: string, name: string) =>
        run({ ...options, ref, name }, ctx),
      ),
    );
}
