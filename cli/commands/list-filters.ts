// The flags `job list` and `sandbox list` share, checked the same way.
import { SANDBOX_STATES } from '../../common/states';
import { usageError } from '../errors';

/** `--state`, as a visibility filter. */
export function stateFilter(state: string): string {
  if (!(SANDBOX_STATES as readonly string[]).includes(state))
    throw usageError(`--state: expected one of ${SANDBOX_STATES.join(', ')}`);
  return `AgentlabState = "${state}"`;
}

export function limitOption(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit <= 0) throw usageError('--limit: expected a positive integer');
  return limit;
}
