// `agentlab job logs | artifacts | diff`: the guest's log and the artifacts it uploaded.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { CliContext, resolveJobId } from '../context';
import { ExitCode } from '../errors';
import { jobFilesFor } from '../job-files';
import { printJson, printTable } from '../output';
import { runAction } from '../run-action';

const FOLLOW_POLL_MS = 500;

async function workflowOpen(ctx: CliContext, jobId: string): Promise<boolean> {
  const execution = await (await ctx.client()).workflow.getHandle(jobId).describe();
  return execution.status.name === 'RUNNING';
}

/** Prints the log from `offset`; with --json, one NDJSON record per chunk with its byte offset. */
function emit(ctx: CliContext, offset: number, chunk: Buffer): void {
  if (chunk.length === 0) return;
  if (ctx.json) process.stdout.write(JSON.stringify({ offset, text: chunk.toString('utf8') }) + '\n');
  else process.stdout.write(chunk);
}

export function registerJobDataCommands(job: Command): void {
  job
    .command('logs <job>')
    .description("print the agent's log; --follow streams it until the job ends")
    .option('--follow', 'keep streaming new output until the job ends')
    .option('--json', 'NDJSON records {offset, text}')
    .action(
      runAction(async (ctx, options: { follow?: boolean }, ref: string) => {
        const jobId = await resolveJobId(await ctx.client(), ref);
        const files = jobFilesFor(ctx);
        let offset = 0;
        for (;;) {
          // Read "is it still open" before the log, so the last bytes are never missed.
          const open = options.follow ? await workflowOpen(ctx, jobId) : false;
          // Until it is drained: the operator API hands out the log in bounded chunks.
          for (let chunk = await files.readLogFrom(jobId, offset); chunk.length > 0;) {
            emit(ctx, offset, chunk);
            offset += chunk.length;
            chunk = await files.readLogFrom(jobId, offset);
          }
          if (!open) return ExitCode.ok;
          await sleep(FOLLOW_POLL_MS);
        }
      }),
    );

  job
    .command('artifacts <job>')
    .description('list the artifacts a job uploaded; --out copies them to a directory')
    .option('--out <dir>', 'copy every artifact into this directory')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, options: { out?: string }, ref: string) => {
        const jobId = await resolveJobId(await ctx.client(), ref);
        const files = jobFilesFor(ctx);
        const artifacts = await files.listArtifacts(jobId);
        if (options.out) {
          const out = resolve(options.out);
          mkdirSync(out, { recursive: true });
          for (const artifact of artifacts)
            writeFileSync(join(out, artifact.name), await files.readArtifact(jobId, artifact.name));
        }
        if (ctx.json) printJson({ jobId, artifacts, ...(options.out ? { out: resolve(options.out) } : {}) });
        else
          printTable(
            ['NAME', 'SIZE', 'SHA256'],
            artifacts.map((a) => [a.name, a.size, a.sha256]),
          );
        return ExitCode.ok;
      }),
    );

  job
    .command('diff <job>')
    .description('print the patch of everything the agent changed (changes.patch)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, _options, ref: string) => {
        const jobId = await resolveJobId(await ctx.client(), ref);
        const files = jobFilesFor(ctx);
        const patch = (await files.readArtifact(jobId, 'changes.patch')).toString('utf8');
        if (ctx.json) printJson({ jobId, patch });
        else process.stdout.write(patch);
        return ExitCode.ok;
      }),
    );
}
