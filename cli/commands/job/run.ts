// `agentlab job run`: start a job, follow it (transitions on stderr, the agent's log on stdout), exit with its
// outcome; `--detach` returns once it has started.
import type { Command } from 'commander';
import { jobFolderText } from '../../../common/job-folder';
import { workflowWebUiUrl } from '../../../common/web-ui';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { followJob, jobSettled } from '../../follow';
import { jobFilesFor } from '../../job-files-reader';
import type { JobRequestOptions } from '../../jobs';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';
import { exitCodeFor, jobDocument } from './document';

export interface RunOptions extends JobRequestOptions {
  detach?: boolean;
}

export async function run(opts: RunOptions, ctx: CliContext): Promise<number> {
  const request = await ctx.jobs.buildRequest({ ...opts, requireTask: true });
  await ctx.jobs.start(request);
  if (!ctx.json)
    progress(ctx.io, `job ${request.jobId} started; Web UI: ${workflowWebUiUrl(ctx.config.temporal, request.jobId)}`);
  if (opts.detach) {
    const d = await ctx.jobs.describe(request.jobId).catch(() => undefined);
    if (ctx.json)
      printJson(ctx.io, {
        jobId: request.jobId,
        status: d?.jobStatus ?? 'QUEUED',
        sandbox: { vmid: d?.vmid ?? null, state: d?.state ?? 'REQUESTED' },
      });
    else ctx.io.out(request.jobId + '\n');
    return ExitCode.ok;
  }
  const files = jobFilesFor(ctx);
  const final = await followJob(await ctx.client(), request.jobId, jobSettled, {
    io: ctx.io,
    quiet: false,
    streamLog: ctx.json ? undefined : (offset) => files.readLogFrom(request.jobId, offset),
  });
  if (ctx.json) printJson(ctx.io, jobDocument(final));
  else {
    progress(
      ctx.io,
      `job ${final.jobId} ${final.jobStatus}${final.exitCode != null ? ` (exit code ${final.exitCode})` : ''}${final.message ? `: ${final.message}` : ''}`,
    );
    progress(ctx.io, `logs and artifacts: ${jobFolderText(ctx.config.dataDir, final.jobId)}`);
  }
  return exitCodeFor(final);
}

export function register(job: Command): void {
  job
    .command('run')
    .description('run an agent on a repository in a fresh sandbox, follow it, exit with its outcome')
    .option(
      '--repo <url|path>',
      'git URL (https, ssh, git), or for local-backend profiles a repository on this machine',
    )
    .option('--task <text>', 'what the agent should do')
    .option('--task-file <file>', 'read the task from a file')
    .option('--profile <name>', 'sandbox profile', 'local')
    .option('--ref <ref>', 'branch, tag or commit to check out (default HEAD)')
    .option('--ttl <duration>', "sandbox lease, e.g. 30m or 2h (default: the profile's)")
    .option('--keepalive', 'keep the sandbox after the job ends (until its lease expires)')
    .option('--agent-command <cmd>', "the agent command to run instead of the profile's")
    .option('--node <node>', 'run on this worker host')
    .option('--workspace <name>', 'attach this persistent workspace at /workspace (the checkout goes there)')
    .option('--no-wait', 'with --workspace: fail at once while another sandbox holds it, instead of waiting')
    .option('--id <jobId>', 'choose the job id')
    .option('--detach', 'start the job and return at once')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: RunOptions) => run(options, ctx)));
}
