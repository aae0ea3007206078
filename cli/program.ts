// The agentlab command tree and how one command line runs on it, against a host: the process (cli/main.ts) or a
// test's buffers (test/cli-in-process.test.ts).
import { Command, CommanderError } from 'commander';
import { registerAgentsCommands } from './commands/agents';
import { registerCompletionCommand } from './commands/completion';
import { registerDoctorCommand } from './commands/doctor';
import { registerJobCommands } from './commands/job/index';
import { registerProfileCommands } from './commands/profile';
import { registerSandboxCommands } from './commands/sandbox/index';
import { registerSecretsCommands } from './commands/secrets';
import { registerStackCommands } from './commands/stack';
import { registerWorkspaceCommands } from './commands/workspace';
import { ExitCode } from './errors';
import { processIo } from './io';
import { Jobs } from './jobs';
import { attachHost, type CliHost } from './run-action';

export const processHost: CliHost = {
  io: processIo,
  setExitCode: (code) => {
    process.exitCode = code;
  },
  jobs: (ctx) => new Jobs(ctx),
};

export function buildProgram(host: CliHost = processHost): Command {
  const program = new Command('agentlab')
    .description('Run AI coding agents unattended in throwaway sandboxes, orchestrated by Temporal')
    .version('0.1.0')
    .configureOutput({ writeOut: (text) => host.io.out(text), writeErr: (text) => host.io.err(text) })
    .showHelpAfterError()
    .exitOverride()
    .enablePositionalOptions(false);
  attachHost(program, host);
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

/** Runs one command line (`argv` as process.argv has it: node, script, then the arguments). */
export async function runCli(argv: string[], host: CliHost = processHost): Promise<void> {
  try {
    await buildProgram(host).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const helpOrVersion = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      host.setExitCode(helpOrVersion || err.exitCode === 0 ? ExitCode.ok : ExitCode.usage);
      return;
    }
    throw err;
  }
}
