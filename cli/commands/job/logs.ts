// `agentlab job logs [--follow]`: the guest's log, as stored on the worker's host.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { jobFilesFor } from '../../job-files-reader';
import { runAction } from '../../run-action';

const FOLLOW_POLL_MS = 500;

export interface LogsOptions {
  ref: string;
  follow?: boolean;
}

async function workflowOpen(ctx: CliContext, jobId: string): Promise<boolean> {
  const execution = await (await ctx.jobs.handle(jobId)).describe();
  return execution.status.name === 'RUNNING';
}

/** Prints the log from `offset`; with --json, one NDJSON record per chunk with its byte offset. */
function emit(ctx: CliContext, offset: number, chunk: Buffer): void {
  if (chunk.length === 0) return;
  if (ctx.json) ctx.io.out(JSON.stringify({ offset, text: chunk.toString('utf8') }) + '\n');
  else ctx.io.out(chunk);
}

export async function run(opts: LogsOptions, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const files = jobFilesFor(ctx);
  let offset = 0;
  for (;;) {
    // Read "is it still open" before the log, so the last bytes are never missed.
    const open = opts.follow ? await workflowOpen(ctx, jobId) : false;
    // Until it is drained: the operator API hands out the log in bounded chunks.
    for (let chunk = await files.readLogFrom(jobId, offset); chunk.length > 0;) {
      emit(ctx, offset, chunk);
      offset += chunk.length;
      chunk = await files.readLogFrom(jobId, offset);
    }
    if (!open) return ExitCode.ok;
    await sleep(FOLLOW_POLL_MS);
  }
}

export function register(job: Command): void {
  job
    .command('logs <job>')
    .description("print the agent's log; --follow streams it until the job ends")
    .option('--follow', 'keep streaming new output until the job ends')
    .option('--json', 'NDJSON records {offset, text}')
    .action(runAction((ctx, options: { follow?: boolean }, ref: string) => run({ ...options, ref }, ctx)));
}
