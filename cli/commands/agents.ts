// `agentlab agents install | list`: the pinned agent CLIs in the tools directory local sandboxes see.
import type { Command } from 'commander';
import { installAgents, listAgents } from '../../common/agent-tools';
import { ExitCode } from '../errors';
import { printJson, printTable, progress } from '../output';
import { runAction } from '../run-action';

export function registerAgentsCommands(program: Command): void {
  const agents = program.command('agents').description('the agent CLIs (Claude Code, Codex, OpenCode) sandboxes run');

  agents
    .command('install')
    .description(
      'install the pinned agent CLIs into the tools directory (config: agents.dir); instant when they are there',
    )
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const dir = ctx.config.agents.dir;
        const started = Date.now();
        const ran = await installAgents(dir, ctx.json ? undefined : (line) => progress(ctx.io, line));
        const installed = await listAgents(dir);
        if (ctx.json)
          printJson(ctx.io, { dir, installedNow: ran, seconds: (Date.now() - started) / 1000, agents: installed });
        else progress(ctx.io, ran ? `installed into ${dir}` : `already installed in ${dir}`);
        return ExitCode.ok;
      }),
    );

  agents
    .command('list')
    .description('the pinned agent CLIs and the versions installed')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const dir = ctx.config.agents.dir;
        const installed = await listAgents(dir);
        if (ctx.json) printJson(ctx.io, { dir, agents: installed });
        else
          printTable(
            ctx.io,
            ['KIND', 'PACKAGE', 'PINNED', 'INSTALLED'],
            installed.map((a) => [a.kind, a.package, a.pinned, a.installed ?? 'no']),
          );
        return ExitCode.ok;
      }),
    );
}
