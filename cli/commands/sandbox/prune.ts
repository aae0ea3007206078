// `agentlab sandbox prune`: destroy every TIMEOUT sandbox whose teardown did not finish.
import type { Command } from 'commander';
import { destroyUpdate } from '../../../common/contract';
import { confirm } from '../../confirm';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export async function run(opts: { yes?: boolean }, ctx: CliContext): Promise<number> {
  const stuck = await ctx.jobs.list('AgentlabState = "TIMEOUT" AND ExecutionStatus = "Running"', 1000);
  if (stuck.length > 0) await confirm(`destroy ${stuck.length} TIMEOUT sandbox(es)`, opts.yes);
  const pruned: string[] = [];
  for (const s of stuck) {
    await (await ctx.jobs.handle(s.jobId)).executeUpdate(destroyUpdate, { args: [{ force: true, reason: 'prune' }] });
    pruned.push(s.jobId);
  }
  if (ctx.json) printJson(ctx.io, { pruned });
  else progress(ctx.io, pruned.length ? `destroy requested for ${pruned.join(', ')}` : 'no TIMEOUT sandboxes to prune');
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('prune')
    .description('destroy every TIMEOUT sandbox whose teardown did not finish (the VM may be gone)')
    .option('--yes', 'do not ask (required when not on a terminal)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: { yes?: boolean }) => run(options, ctx)));
}
