// A way in for a person (`sandbox shell`, `sandbox ssh`). The workflow records who got in (and refuses a sandbox
// that is not up, on the wrong backend or, for shell, on another host) before the CLI enters.
import { spawn } from 'node:child_process';
import { constants, hostname, userInfo } from 'node:os';
import type { WorkflowHandle } from '@temporalio/client';
import {
  describeQuery,
  recordAccessUpdate,
  type AccessKind,
  type AccessRequest,
  type JobDescription,
} from '../../../common/contract';
import { accessRejection } from '../../../common/operator-access';
import type { CliContext } from '../../context';
import { rejected } from '../../errors';

export interface Access {
  handle: WorkflowHandle;
  sandbox: JobDescription;
  request: AccessRequest;
}

/**
 * The workflow's own rule, read from its state before anything on this side is prepared: a refusal names
 * the state, the backend or the host without recording anything. The Update checks it again, atomically.
 */
export async function preflight(ctx: CliContext, ref: string, kind: AccessKind): Promise<Access> {
  const handle = await ctx.jobs.liveHandle(ref);
  const sandbox = await handle.query(describeQuery);
  const request = { kind, user: userInfo().username, host: hostname(), node: ctx.config.node };
  const rejection = accessRejection(sandbox, request);
  if (rejection) throw rejected(rejection);
  return { handle, sandbox, request };
}

/** Records the access on the sandbox's timeline; only then does the person get in. */
export const recordAccess = ({ handle, request }: Access) =>
  handle.executeUpdate(recordAccessUpdate, { args: [request] });

/** Runs a command with the terminal handed over; resolves to its exit code (128 + signal when killed). */
export function runAttached(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  // The terminal's Ctrl-C is for the program inside, not for this CLI.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  return new Promise<number>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', ...(env ? { env } : {}) });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  }).finally(() => process.off('SIGINT', ignore));
}

/** commander hands a variadic argument over as a list, or undefined when none was given. */
export const asList = (value?: string | string[]): string[] => (value === undefined ? [] : [value].flat());
