// `agentlab job artifacts [--out DIR]`: the artifacts a job uploaded.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { jobFilesFor } from '../../job-files-reader';
import { printJson, printTable } from '../../output';
import { runAction } from '../../run-action';

export interface ArtifactsOptions {
  ref: string;
  out?: string;
}

export async function run(opts: ArtifactsOptions, ctx: CliContext): Promise<number> {
  const jobId = await ctx.jobs.resolve(opts.ref);
  const files = jobFilesFor(ctx);
  const artifacts = await files.listArtifacts(jobId);
  if (opts.out) {
    const out = resolve(opts.out);
    mkdirSync(out, { recursive: true });
    for (const artifact of artifacts)
      writeFileSync(join(out, artifact.name), await files.readArtifact(jobId, artifact.name));
  }
  if (ctx.json) printJson(ctx.io, { jobId, artifacts, ...(opts.out ? { out: resolve(opts.out) } : {}) });
  else
    printTable(
      ctx.io,
      ['NAME', 'SIZE', 'SHA256'],
      artifacts.map((a) => [a.name, a.size, a.sha256]),
    );
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('artifacts <job>')
    .description('list the artifacts a job uploaded; --out copies them to a directory')
    .option('--out <dir>', 'copy every artifact into this directory')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: { out?: string }, ref: string) => run({ ...options, ref }, ctx)));
}
