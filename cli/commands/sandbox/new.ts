// `agentlab sandbox new`: a sandbox without a job; it lives until its lease expires or it is destroyed.
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { followJob, sandboxSettled } from '../../follow';
import type { JobRequestOptions } from '../../jobs';
import { printJson } from '../../output';
import { runAction } from '../../run-action';
import { sandboxDocument } from './document';

export interface NewOptions extends Pick<JobRequestOptions, 'profile' | 'ttl' | 'node' | 'id' | 'workspace' | 'wait'> {
  detach?: boolean;
}

export async function run(opts: NewOptions, ctx: CliContext): Promise<number> {
  const request = await ctx.jobs.buildRequest({ ...opts, requireTask: false });
  await ctx.jobs.start(request);
  if (opts.detach) {
    if (ctx.json) printJson(ctx.io, { jobId: request.jobId, vmid: null, state: 'REQUESTED' });
    else ctx.io.out(request.jobId + '\n');
    return ExitCode.ok;
  }
  const d = await followJob(await ctx.client(), request.jobId, sandboxSettled, { io: ctx.io, quiet: ctx.json });
  if (ctx.json) printJson(ctx.io, sandboxDocument(d));
  else ctx.io.out(`${d.vmid ?? '-'}\t${d.state}\t${d.jobId}\n`);
  return d.state === 'RUNNING' ? ExitCode.ok : ExitCode.failed;
}

export function register(sandbox: Command): void {
  sandbox
    .command('new')
    .description('create a sandbox without a job; it lives until its lease expires or it is destroyed')
    .option('--profile <name>', 'sandbox profile', 'local')
    .option('--ttl <duration>', "lease, e.g. 30m or 2h (default: the profile's)")
    .option('--node <node>', 'run on this worker host')
    .option('--workspace <name>', 'attach this persistent workspace at /workspace')
    .option('--no-wait', 'with --workspace: fail at once while another sandbox holds it, instead of waiting')
    .option('--id <id>', 'choose the id')
    .option('--detach', 'return at once')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: NewOptions) => run(options, ctx)));
}
