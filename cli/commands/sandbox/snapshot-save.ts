// `agentlab sandbox snapshot save`: user snapshots of a sandbox's disks (the original system's feature). They need
// a STOPPED sandbox, or --force on a live one; `clean` stays revert's.
import type { Command } from 'commander';
import { snapshotUpdate, type SnapshotRecord } from '../../../common/contract';
import { userSnapshotNameProblem } from '../../../common/snapshot-names';
import type { CliContext } from '../../context';
import { ExitCode, usageError } from '../../errors';
import { formatTime, printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export const snapshotDocument = (s: SnapshotRecord) => ({ name: s.name, at: formatTime(s.at), state: s.state });

export interface SaveOptions {
  ref: string;
  name: string;
  force?: boolean;
}

export async function run(opts: SaveOptions, ctx: CliContext): Promise<number> {
  const badName = userSnapshotNameProblem(opts.name);
  if (badName) throw usageError(badName);
  const handle = await ctx.jobs.liveHandle(opts.ref);
  const { snapshot: saved } = await handle.executeUpdate(snapshotUpdate, {
    args: [{ name: opts.name, force: opts.force === true }],
  });
  if (ctx.json) printJson(ctx.io, { jobId: handle.workflowId, snapshot: snapshotDocument(saved) });
  else
    progress(ctx.io, `snapshot ${saved.name} of the sandbox of job ${handle.workflowId} saved (it was ${saved.state})`);
  return ExitCode.ok;
}

export function register(snapshot: Command): void {
  snapshot
    .command('save <sandbox> <name>')
    .description('snapshot the disks of a STOPPED sandbox (--force: a live one)')
    .option('--force', 'snapshot a READY or RUNNING sandbox (its disks may be mid-write)')
    .option('--json', 'print one JSON document')
    .action(
      runAction((ctx, options: { force?: boolean }, ref: string, name: string) => run({ ...options, ref, name }, ctx)),
    );
}
