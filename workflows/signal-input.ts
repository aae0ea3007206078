// Reads the input of the Signals operators send by hand (Web UI, `temporal workflow signal`): no SDK types them.
import type { DestroySignalInput } from '../common/contract';
import { parseDuration } from '../common/duration';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The lease length a renewLease Signal asks for, or what is wrong with its input. */
export function renewSignalTtl(input: unknown): { ttlMs: number } | { problem: string } {
  const example = 'expected {"ttl": "<duration>"}, e.g. {"ttl": "2h"}';
  if (!isRecord(input)) return { problem: `input: ${example}, got ${JSON.stringify(input) ?? 'nothing'}` };
  const { ttl } = input;
  const ttlMs = typeof ttl === 'string' ? parseDuration(ttl) : undefined;
  if (ttlMs === undefined || ttlMs <= 0) {
    return { problem: `ttl: ${example} (90s, 15m, 3h, 1h30m), got ${JSON.stringify(ttl) ?? 'nothing'}` };
  }
  return { ttlMs };
}

/** A destroy Signal's input (absent: `{}`), or what is wrong with it. */
export function destroySignalInput(input: unknown): DestroySignalInput | { problem: string } {
  if (input === undefined || input === null) return {};
  const example = 'expected {"force": false, "reason": "…"}';
  if (!isRecord(input)) return { problem: `input: ${example}, got ${JSON.stringify(input)}` };
  if (input.force !== undefined && typeof input.force !== 'boolean') {
    return { problem: `force: expected true or false, got ${JSON.stringify(input.force)}` };
  }
  if (input.reason !== undefined && typeof input.reason !== 'string') {
    return { problem: `reason: expected a string, got ${JSON.stringify(input.reason)}` };
  }
  return { force: input.force as boolean | undefined, reason: input.reason as string | undefined };
}

/** Shown by the Web UI's "Send a Signal" dialog (the workflow's metadata query): what to type, and the rules. */
export const SIGNAL_DESCRIPTIONS = {
  renewLease:
    'Renew the lease to now + ttl, e.g. {"ttl": "2h"}. RUNNING only, up to the profile\'s maxTtl; a refusal is a timeline entry.',
  destroy:
    'Destroy the sandbox, e.g. {"force": false, "reason": "done"}. READY, RUNNING, STOPPED; force for TIMEOUT or FAILED; a refusal is a timeline entry.',
} as const;
