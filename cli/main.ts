#!/usr/bin/env node
// agentlab: the operator's CLI. Wires the commands; each lives in cli/commands/.
import { Command, CommanderError } from 'commander';
import { registerAgentsCommands } from './commands/agents';
import { registerCompletionCommand } from './commands/completion';
import { registerDoctorCommand } from './commands/doctor';
import { registerJobCommands } from './commands/job';
import { registerProfileCommands } from './commands/profile';
import { registerSandboxCommands } from './commands/sandbox';
import { registerSecretsCommands } from './commands/secrets';
import { registerStackCommands } from './commands/stack';
import { registerWorkspaceCommands } from './commands/workspace';
import { ExitCode } from './errors';

export function buildProgram(): Command {
  const program = new Command('agentlab')
    .description('Run AI coding agents unattended in throwaway sandboxes, orchestrated by Temporal')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .enablePositionalOptions(false);
  registerStackCommands(program);
  registerJobCommands(program);
  registerSandboxCommands(program);
  registerWorkspaceCommands(program);
  registerProfileCommands(program);
  registerAgentsCommands(program);
  registerSecretsCommands(program);
  registerDoctorCommand(program);
  registerCompletionCommand(program);
  // Usage errors exit 2 (commander's default is 1); --help and --version exit 0.
  const exitTwo = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(exitTwo);
  };
  exitTwo(program);
  return program;
}

async function run(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const helpOrVersion = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      process.exitCode = helpOrVersion || err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return;
    }
    throw err;
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
