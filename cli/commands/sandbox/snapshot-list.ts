// `agentlab sandbox snapshot list`: a sandbox's own snapshots, oldest first.
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { formatTime, printJson, printTable } from '../../output';
import { runAction } from '../../run-action';
import { snapshotDocument } from './snapshot-save';

export async function run(opts: { ref: string }, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const { snapshots } = await ctx.jobs.describe(jobId);
  const listed = snapshots ?? []; // a sandbox from before snapshots has none
  if (ctx.json) printJson(ctx.io, { jobId, snapshots: listed.map(snapshotDocument) });
  else
    printTable(
      ctx.io,
      ['NAME', 'SAVED', 'STATE'],
      listed.map((s) => [s.name, formatTime(s.at), s.state]),
    );
  return ExitCode.ok;
}

export function register(snapshot: Command): void {
  snapshot
    .command('list <sandbox>')
    .description("a sandbox's snapshots, oldest first (revert's clean one is not listed)")
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, _options, ref: string) => run({ ref }, ctx)));
}
