// `agentlab job cancel`: the agent stops, teardown destroys its sandbox, status CANCELLED.
import type { Command } from 'commander';
import { confirm } from '../../confirm';
import type { CliContext } from '../../context';
import { ExitCode, rejected } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export interface CancelOptions {
  ref: string;
  yes?: boolean;
}

export async function run(opts: CancelOptions, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const handle = await ctx.jobs.handle(jobId);
  const execution = await handle.describe();
  if (execution.status.name !== 'RUNNING') throw rejected(`job ${jobId} has already ended (${execution.status.name})`);
  await confirm(`cancel job ${jobId}`, opts.yes);
  await handle.cancel();
  if (ctx.json) printJson(ctx.io, { jobId, cancelRequested: true });
  else progress(ctx.io, `cancel requested for job ${jobId}; teardown runs in the workflow`);
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('cancel <job>')
    .description('cancel a job: the agent stops, teardown destroys its sandbox, status CANCELLED')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: { yes?: boolean }, ref: string) => run({ ...options, ref }, ctx)));
}
