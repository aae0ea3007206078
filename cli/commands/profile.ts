// `agentlab profile list | show`: the profiles this config defines (embedded defaults plus the file's).
import { AGENT_COMMANDS } from '../../common/agents';
import type { Command } from 'commander';
import type { Profile } from '../../common/config';
import { formatDuration } from '../../common/duration';
import { ExitCode, notFound } from '../errors';
import { printFields, printJson, printTable } from '../output';
import { runAction } from '../run-action';

function profileDocument(p: Profile) {
  return {
    name: p.name,
    description: p.description,
    backend: p.backend,
    node: p.node ?? null,
    templateVmid: p.templateVmid ?? null,
    cores: p.resources.cores,
    memoryMb: p.resources.memoryMb,
    diskGb: p.resources.diskGb ?? null,
    ttl: formatDuration(p.ttl),
    maxTtl: formatDuration(p.maxTtl),
    keepalive: p.keepalive,
    agentKind: p.agent.command ? null : p.agent.kind,
    agentCommand: p.agent.command ?? AGENT_COMMANDS[p.agent.kind],
    agentTimeout: p.agent.timeout ? formatDuration(p.agent.timeout) : null,
    provisioningAttempts: p.provisioning.attempts,
  };
}

export function registerProfileCommands(program: Command): void {
  const profile = program.command('profile').description('sandbox profiles');

  profile
    .command('list')
    .description('list the profiles')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const profiles = [...ctx.config.profiles.values()].map(profileDocument);
        if (ctx.json) printJson(ctx.io, { profiles, source: ctx.config.source });
        else
          printTable(
            ctx.io,
            ['NAME', 'BACKEND', 'TTL', 'MAX TTL', 'KEEPALIVE', 'DESCRIPTION'],
            profiles.map((p) => [p.name, p.backend, p.ttl, p.maxTtl, p.keepalive ? 'yes' : 'no', p.description]),
          );
        return ExitCode.ok;
      }),
    );

  profile
    .command('show <name>')
    .description('show one profile')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx, _options, name: string) => {
        const found = ctx.config.profiles.get(name);
        if (!found) throw notFound(`no profile "${name}" (known: ${[...ctx.config.profiles.keys()].join(', ')})`);
        const doc = profileDocument(found);
        if (ctx.json) printJson(ctx.io, doc);
        else
          printFields(
            ctx.io,
            Object.entries(doc).map(([k, v]) => [k, v === null ? undefined : String(v)]),
          );
        return ExitCode.ok;
      }),
    );
}
