// `agentlab job show`: one job, by job id or VMID.
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson } from '../../output';
import { runAction } from '../../run-action';
import { jobDocument, printJob } from './document';

export async function run(opts: { ref: string }, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const d = await ctx.jobs.describe(jobId);
  const place = (await ctx.jobs.placesInLine([{ ...d, jobId }])).get(jobId);
  if (ctx.json) printJson(ctx.io, jobDocument(d, place));
  else printJob(ctx.io, d, place);
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('show <job>')
    .description('show a job (by job id or VMID)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, _options, ref: string) => run({ ref }, ctx)));
}
