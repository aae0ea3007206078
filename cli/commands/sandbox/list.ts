// `agentlab sandbox list`: live sandboxes, or all of them.
import type { Command } from 'commander';
import { SANDBOX_STATES } from '../../../common/states';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import type { ListedJob } from '../../jobs';
import { formatTime, printJson, printTable } from '../../output';
import { runAction } from '../../run-action';
import { limitOption, stateFilter } from '../list-filters';

export interface ListOptions {
  all?: boolean;
  state?: string;
  limit: string;
}

export async function run(opts: ListOptions, ctx: CliContext): Promise<number> {
  const filters: string[] = [];
  if (opts.state) filters.push(stateFilter(opts.state));
  else if (!opts.all) filters.push('ExecutionStatus = "Running"');
  const sandboxes = await ctx.jobs.list(filters.join(' AND '), limitOption(opts.limit));
  const row = (s: ListedJob) => [s.vmid, s.state, s.jobId, s.profile, s.node, formatTime(s.leaseExpiresAt)];
  if (ctx.json)
    printJson(ctx.io, {
      sandboxes: sandboxes.map((s) => ({
        vmid: s.vmid ?? null,
        state: s.state,
        jobId: s.jobId,
        jobStatus: s.jobStatus,
        profile: s.profile,
        node: s.node ?? null,
        leaseExpiresAt: formatTime(s.leaseExpiresAt) ?? null,
      })),
    });
  else printTable(ctx.io, ['VMID', 'STATE', 'JOB', 'PROFILE', 'NODE', 'LEASE EXPIRES'], sandboxes.map(row));
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('list')
    .description('list sandboxes (live ones unless --all)')
    .option('--all', 'include destroyed and failed sandboxes')
    .option('--state <state>', `only this state (${SANDBOX_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: ListOptions) => run(options, ctx)));
}
