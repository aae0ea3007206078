// `agentlab sandbox revert`: roll a sandbox back to its clean snapshot (taken after first boot).
import type { Command } from 'commander';
import { CLEAN_SNAPSHOT, describeQuery, revertUpdate } from '../../../common/contract';
import { confirm } from '../../confirm';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export interface RevertOptions {
  ref: string;
  restart?: boolean;
  force?: boolean;
  yes?: boolean;
}

export async function run(opts: RevertOptions, ctx: CliContext): Promise<number> {
  const handle = await ctx.jobs.liveHandle(opts.ref);
  // Only the state at this moment picks the default; the workflow validates the request itself.
  const restart = opts.restart ?? (await handle.query(describeQuery)).state !== 'STOPPED';
  await confirm(
    `revert the sandbox of job ${handle.workflowId} to its clean snapshot, losing everything written since`,
    opts.yes,
  );
  if (!ctx.json)
    progress(ctx.io, `reverting the sandbox of job ${handle.workflowId}${restart ? ' and booting it again' : ''}`);
  const { state } = await handle.executeUpdate(revertUpdate, {
    args: [{ force: opts.force === true, restart }],
  });
  if (ctx.json) printJson(ctx.io, { jobId: handle.workflowId, state, snapshot: CLEAN_SNAPSHOT, restarted: restart });
  else
    progress(ctx.io, `sandbox of job ${handle.workflowId} reverted to its ${CLEAN_SNAPSHOT} snapshot; it is ${state}`);
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('revert <sandbox>')
    .description('roll a READY, RUNNING or STOPPED sandbox back to its clean snapshot (taken after first boot)')
    .option('--restart', 'boot it again afterwards (default when it was not STOPPED)')
    .option('--no-restart', 'leave it STOPPED (default when it was STOPPED)')
    .option('--force', 'revert even while its job is RUNNING (the agent loses everything it wrote)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: Omit<RevertOptions, 'ref'>, ref: string) => run({ ...options, ref }, ctx)));
}
