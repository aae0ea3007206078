// `agentlab sandbox reconcile`: destroy orphans now (the host's Schedule does it too).
import type { Command } from 'commander';
import { reconcileWorkflow } from '../../../workflows/reconcile-workflow';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson, printTable } from '../../output';
import { runAction } from '../../run-action';

export async function run(opts: { node?: string }, ctx: CliContext): Promise<number> {
  const { config } = ctx;
  const node = opts.node ?? config.node;
  const client = await ctx.client();
  const reports = await client.workflow.execute(reconcileWorkflow, {
    workflowId: `reconcile-${node}-${Date.now()}`,
    taskQueue: config.temporal.taskQueue,
    args: [{ node, backends: config.worker.backends }],
    workflowExecutionTimeout: '15m',
  });
  if (ctx.json) printJson(ctx.io, { reports });
  else {
    const vmids = (list: number[]) => (list.length ? list.join(' ') : '-');
    printTable(
      ctx.io,
      ['NODE', 'BACKEND', 'CHECKED', 'DESTROYED', 'KEPT', 'FAILED'],
      reports.map((r) => [
        r.node,
        r.backend,
        String(r.checked),
        vmids(r.destroyed),
        vmids(r.kept),
        r.failed.map((f) => `${f.vmid}: ${f.reason}`).join('; ') || '-',
      ]),
    );
  }
  return reports.some((r) => r.failed.length > 0) ? ExitCode.failed : ExitCode.ok;
}

export function register(sandbox: Command): void {
  sandbox
    .command('reconcile')
    .description("destroy orphans now: VMs of ours whose job workflow has ended (the host's Schedule does it too)")
    .option('--node <node>', "the host to reconcile (default: this config's node)")
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: { node?: string }) => run(options, ctx)));
}
