// `agentlab sandbox lease renew --ttl`: the lease then expires --ttl from now.
import type { Command } from 'commander';
import { renewLeaseUpdate } from '../../../common/contract';
import { describeIssues, durationSchema } from '../../../common/schemas';
import type { CliContext } from '../../context';
import { ExitCode, usageError } from '../../errors';
import { formatTime, printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export async function run(opts: { ref: string; ttl: string }, ctx: CliContext): Promise<number> {
  const ttl = durationSchema.safeParse(opts.ttl);
  if (!ttl.success) throw usageError(`--ttl: ${describeIssues(ttl.error)}`);
  const handle = await ctx.jobs.liveHandle(opts.ref);
  const { leaseExpiresAt } = await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: ttl.data }] });
  if (ctx.json) printJson(ctx.io, { jobId: handle.workflowId, leaseExpiresAt: formatTime(leaseExpiresAt) });
  else progress(ctx.io, `lease of job ${handle.workflowId} now expires at ${formatTime(leaseExpiresAt)}`);
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('lease')
    .description('manage a sandbox lease')
    .command('renew <sandbox>')
    .description('set the lease to expire --ttl from now (RUNNING only)')
    .requiredOption('--ttl <duration>', 'new lease length from now, e.g. 30m or 2h')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: { ttl: string }, ref: string) => run({ ...options, ref }, ctx)));
}
