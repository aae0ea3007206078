// Errors → exit codes (DESIGN.md): the one mapping every command uses.
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ConfigError } from '../common/config';
import { TemporalUnavailableError } from '../common/temporal';

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  notFound: 3,
  timedOut: 4,
  unavailable: 5,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    readonly code: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const usageError = (message: string, details?: unknown) =>
  new CliError(message, ExitCode.usage, 'usage', details);
export const notFound = (message: string) => new CliError(message, ExitCode.notFound, 'not_found');
export const rejected = (message: string) => new CliError(message, ExitCode.failed, 'rejected');

function isUnavailable(err: unknown): boolean {
  const text = `${(err as Error)?.name ?? ''} ${(err as Error)?.message ?? ''}`;
  return /UNAVAILABLE|ECONNREFUSED|failed to connect|Connection dropped|DEADLINE_EXCEEDED|No connection established/i.test(
    text,
  );
}

export function toCliError(err: unknown, temporalAddress?: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ConfigError) return new CliError(err.message, ExitCode.usage, 'config');
  if (err instanceof TemporalUnavailableError) {
    const code = { unreachable: 'unavailable', tls: 'tls_handshake', auth: 'unauthenticated' }[err.reason];
    return new CliError(err.message, ExitCode.unavailable, code);
  }
  if (err instanceof WorkflowNotFoundError) return notFound(`job ${err.workflowId ?? ''} not found`.replace('  ', ' '));
  if (err instanceof WorkflowUpdateFailedError) return rejected(err.cause?.message ?? err.message);
  if (isUnavailable(err)) {
    return new CliError(
      `cannot reach Temporal${temporalAddress ? ` at ${temporalAddress}` : ''}: ${(err as Error).message}`,
      ExitCode.unavailable,
      'unavailable',
    );
  }
  return new CliError((err as Error)?.message ?? String(err), ExitCode.failed, 'error');
}
