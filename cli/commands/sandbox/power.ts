// `agentlab sandbox stop | start`: power a sandbox off and on again.
import type { Command } from 'commander';
import { startUpdate, stopUpdate } from '../../../common/contract';
import type { CliContext } from '../../context';
import { ExitCode } from '../../errors';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

const POWER = {
  stop: { update: stopUpdate, description: 'power a READY or RUNNING sandbox off' },
  start: { update: startUpdate, description: 'boot a STOPPED sandbox again' },
} as const;

export type PowerAction = keyof typeof POWER;

export async function run(opts: { action: PowerAction; ref: string }, ctx: CliContext): Promise<number> {
  const handle = await ctx.jobs.liveHandle(opts.ref);
  const { state } = await handle.executeUpdate(POWER[opts.action].update, { args: [] });
  if (ctx.json) printJson(ctx.io, { jobId: handle.workflowId, state });
  else progress(ctx.io, `sandbox of job ${handle.workflowId} is ${state}`);
  return ExitCode.ok;
}

export function register(sandbox: Command): void {
  for (const action of ['stop', 'start'] as const) {
    sandbox
      .command(`${action} <sandbox>`)
      .description(POWER[action].description)
      .option('--json', 'print one JSON document')
      .action(runAction((ctx, _options, ref: string) => run({ action, ref }, ctx)));
  }
}
