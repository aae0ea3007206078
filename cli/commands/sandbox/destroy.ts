// `agentlab sandbox destroy [--force]`: teardown runs in the workflow.
import type { Command } from 'commander';
import { destroyUpdate } from '../../../common/contract';
import { confirm } from '../../confirm';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export interface DestroyOptions {
  ref: string;
  force?: boolean;
  yes?: boolean;
}

export async function run(opts: DestroyOptions, ctx: CliContext): Promise<number> {
  const handle = await ctx.jobs.liveHandle(opts.ref);
  await confirm(`destroy the sandbox of job ${handle.workflowId}`, opts.yes);
  const { state } = await handle.executeUpdate(destroyUpdate, {
    args: [{ force: opts.force === true }], // the message says "by operator" already
  });
  if (!ctx.json)
    progress(
      ctx.io,
      `destroy requested for sandbox of job ${handle.workflowId} (was ${state}); teardown runs in the workflow`,
    );
  else printJson(ctx.io, { jobId: handle.workflowId, requested: true, previousState: state });
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('destroy <sandbox>')
    .description('destroy a sandbox (READY, RUNNING or STOPPED; other states need --force)')
    .option('--force', 'destroy in any state (e.g. TIMEOUT or FAILED)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: Omit<DestroyOptions, 'ref'>, ref: string) => run({ ...options, ref }, ctx)));
}
