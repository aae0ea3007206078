// `agentlab job list`: jobs newest first, with the place in line of those waiting for capacity.
import type { Command } from 'commander';
import { JOB_STATUSES, SANDBOX_STATES } from '../../../common/states';
import type { CliContext } from '../../context';
import { ExitCode, usageError } from '../../errors';
import { formatTime, printJson, printTable } from '../../output';
import { runAction } from '../../run-action';
import { limitOption, stateFilter } from '../list-filters';

export interface ListOptions {
  status?: string;
  state?: string;
  limit: string;
}

export async function run(opts: ListOptions, ctx: CliContext): Promise<number> {
  const filters: string[] = [];
  if (opts.status) {
    if (!(JOB_STATUSES as readonly string[]).includes(opts.status))
      throw usageError(`--status: expected one of ${JOB_STATUSES.join(', ')}`);
    filters.push(`AgentlabJobStatus = "${opts.status}"`);
  }
  if (opts.state) filters.push(stateFilter(opts.state));
  const limit = limitOption(opts.limit);
  const listed = await ctx.jobs.list(filters.join(' AND '), limit);
  const places = await ctx.jobs.placesInLine(listed);
  const jobs = listed.map((j) => (places.has(j.jobId) ? { ...j, placeInLine: places.get(j.jobId)! } : j));
  if (ctx.json) printJson(ctx.io, { jobs });
  else {
    printTable(
      ctx.io,
      ['JOB', 'STATUS', 'STATE', 'PROFILE', 'VMID', 'STARTED', 'TASK'],
      jobs.map((j) => [
        j.jobId,
        'placeInLine' in j ? `${j.jobStatus} #${j.placeInLine}` : j.jobStatus,
        j.state,
        j.profile,
        j.vmid,
        formatTime(j.startedAt),
        j.task?.split('\n')[0]?.slice(0, 40) ?? (j.memoUnreadable ? '(encrypted)' : undefined),
      ]),
    );
  }
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('list')
    .description('list jobs, newest first')
    .option('--status <status>', `only jobs with this status (${JOB_STATUSES.join(', ')})`)
    .option('--state <state>', `only sandboxes in this state (${SANDBOX_STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: ListOptions) => run(options, ctx)));
}
