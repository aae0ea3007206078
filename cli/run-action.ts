// Wraps a command's action: builds the context, maps any error to its exit code and JSON envelope.
import type { Command } from 'commander';
import type { AgentlabConfig } from '../common/config';
import { CliContext } from './context';
import { toCliError } from './errors';
import type { CliIo } from './io';
import type { Jobs } from './jobs';
import { printError } from './output';

/** What a program runs against: the process (cli/main.ts), or a test's buffers and fakes. */
export interface CliHost {
  io: CliIo;
  /** Records a command's exit code: process.exitCode, or a test's variable. */
  setExitCode(code: number): void;
  jobs: (ctx: CliContext) => Jobs;
  loadConfig?: () => AgentlabConfig;
}

const hosts = new WeakMap<Command, CliHost>();

/** Every action under `program` runs against this host. */
export function attachHost(program: Command, host: CliHost): void {
  hosts.set(program, host);
}

export function hostOf(command: Command): CliHost {
  let root = command;
  while (root.parent) root = root.parent;
  const host = hosts.get(root);
  if (!host) throw new Error(`command ${root.name()} has no host: build it with buildProgram()`);
  return host;
}

type Action<O> = (ctx: CliContext, options: O, ...positionals: string[]) => Promise<number>;

export function runAction<O>(action: Action<O>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args.pop() as Command;
    const options = command.optsWithGlobals() as O & { json?: boolean };
    const positionals = args.slice(0, -1) as string[];
    const host = hostOf(command);
    const ctx = new CliContext({ json: options.json === true, ...host });
    try {
      host.setExitCode(await action(ctx, options, ...positionals));
    } catch (err) {
      let address: string | undefined;
      try {
        address = ctx.config.temporal.address;
      } catch {
        address = undefined;
      }
      const error = toCliError(err, address);
      printError(ctx.io, error, { json: ctx.json });
      host.setExitCode(error.exitCode);
    } finally {
      await ctx.close();
    }
  };
}
