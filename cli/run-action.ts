// Wraps a command's action: builds the context, maps any error to its exit code and JSON envelope.
import type { Command } from 'commander';
import { CliContext } from './context';
import { toCliError } from './errors';
import { printError } from './output';

type Action<O> = (ctx: CliContext, options: O, ...positionals: string[]) => Promise<number>;

export function runAction<O>(action: Action<O>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args.pop() as Command;
    const options = command.optsWithGlobals() as O & { json?: boolean };
    const positionals = args.slice(0, -1) as string[];
    const ctx = new CliContext(options.json === true);
    try {
      process.exitCode = await action(ctx, options, ...positionals);
    } catch (err) {
      let address: string | undefined;
      try {
        address = ctx.config.temporal.address;
      } catch {
        address = undefined;
      }
      const error = toCliError(err, address);
      printError(error, { json: ctx.json });
      process.exitCode = error.exitCode;
    } finally {
      await ctx.close();
    }
  };
}
