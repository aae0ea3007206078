// `agentlab sandbox show`: one sandbox, by VMID or job id, with its snapshots and timeline.
import type { Command } from 'commander';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { formatTime, printFields, printJson, printTable } from '../../output';
import { runAction } from '../../run-action';
import { sandboxDocument } from './document';

export async function run(opts: { ref: string }, ctx: CliContext): Promise<number> {
  const d = await ctx.jobs.describe(await ctx.jobs.resolve(opts.ref));
  if (ctx.json) printJson(ctx.io, sandboxDocument(d));
  else {
    printFields(ctx.io, [
      ['VMID', d.vmid],
      ['State', d.state],
      ['Job', `${d.jobId} (${d.jobStatus})`],
      ['Profile', d.profile],
      ['Node', d.node],
      ['Address', d.address],
      ['Lease expires', formatTime(d.leaseExpiresAt)],
      ['Keepalive', d.keepalive ? 'yes' : 'no'],
      ['Snapshots', (d.snapshots ?? []).map((s) => s.name).join(', ') || 'none'],
      ['Clean snapshot', d.cleanSnapshot ? 'yes' : `no${d.cleanSnapshotError ? ` (${d.cleanSnapshotError})` : ''}`],
    ]);
    printTable(
      ctx.io,
      ['STATE', 'AT', 'NOTE'],
      d.timeline.map((t) => [t.state, formatTime(t.at), t.note]),
    );
  }
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('show <sandbox>')
    .description('show a sandbox (VMID or job id)')
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, _options, ref: string) => run({ ref }, ctx)));
}
