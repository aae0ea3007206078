// `agentlab job diff`: the patch of everything the agent changed.
import type { Command } from 'commander';
import { JOB_ARTIFACTS } from '../../../common/job-folder';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { jobFilesFor } from '../../job-files-reader';
import { printJson } from '../../output';
import { runAction } from '../../run-action';

export async function run(opts: { ref: string }, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const patch = (await jobFilesFor(ctx).readArtifact(jobId, JOB_ARTIFACTS.patch)).toString('utf8');
  if (ctx.json) printJson(ctx.io, { jobId, patch });
  else ctx.io.out(patch);
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('diff <job>')
    .description('print the patch of everything the agent changed (changes.patch)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, _options, ref: string) => run({ ref }, ctx)));
}
