// `agentlab sandbox shell`: enter a local sandbox's namespaces as its agent user (on its host, as root).
import type { Command } from 'commander';
import { localEntry } from '../../../backends/local/entry';
import type { CliContext } from '../../context';
import { rejected } from '../../errors';
import { runAction } from '../../run-action';
import { asList, preflight, recordAccess, runAttached } from './access';

export async function run(opts: { ref: string; command: string[] }, ctx: CliContext): Promise<number> {
  const access = await preflight(ctx, opts.ref, 'shell');
  if (ctx.config.local.isolation === 'none') {
    throw rejected('local.isolation is none: sandboxes are plain processes here, with no namespaces to enter');
  }
  if (process.getuid?.() !== 0) {
    throw rejected("sandbox shell enters the sandbox's namespaces with nsenter, which needs root: use sudo");
  }
  const { vmid } = await recordAccess(access);
  const entry = await localEntry(ctx.config.dataDir, vmid, opts.command, process.env.TERM);
  return runAttached(entry.argv, entry.env);
}

export function register(sandbox: Command): void {
  sandbox
    .command('shell <sandbox> [command...]')
    .description("enter a READY or RUNNING local sandbox's namespaces as its agent user (on its host, as root)")
    .action(
      runAction((ctx, _options, ref: string, command?: string | string[]) =>
        run({ ref, command: asList(command) }, ctx),
      ),
    );
}
