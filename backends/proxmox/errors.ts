// Proxmox API errors: one class, a kind per failure we act on (with its retry decision), Proxmox's own text.
import { PermanentBackendError } from '../contract';

/** Each failure we act on, and whether asking again later can heal it. */
const KINDS = {
  'not-found': { retryable: false },
  /** `VM is locked (clone)`: another operation holds the VM; it ends by itself. */
  locked: { retryable: true },
  /** `can't lock file ... got timeout`: contention on a config or storage flock. */
  'lock-timeout': { retryable: true },
  'already-running': { retryable: false },
  /** The guest is still booting (or has no agent installed): ask again later. */
  'agent-not-running': { retryable: true },
  /** `snapshot name 'clean' already used`: for our one snapshot name, a retried snapshot that already succeeded. */
  'snapshot-exists': { retryable: false },
  /** `snapshot 'clean' does not exist` (rollback or delete): not a missing VM, which is not-found. */
  'snapshot-missing': { retryable: false },
  parameter: { retryable: false },
  permission: { retryable: false },
  /** 596 (and the other AnyEvent pseudo-statuses 595/597/599): pveproxy gave up on pvedaemon. */
  timeout: { retryable: true },
  connection: { retryable: true },
  /** The server's certificate is not the pinned or trusted one: a configuration problem that no retry heals. */
  tls: { retryable: false },
  /** Unknown texts are not retried blindly, except the transient families PVE itself produces. */
  other: {
    retryable: (pveMessage: string) => /got timeout|got no worker upid|temporarily unavailable/i.test(pveMessage),
  },
} as const satisfies Record<string, { retryable: boolean | ((pveMessage: string) => boolean) }>;

export type PveErrorKind = keyof typeof KINDS;

export interface PveErrorDetails {
  /** HTTP status; undefined for a failure reported by a task's exitstatus or a dead connection. */
  status?: number;
  /** Per-field messages of a 400 `Parameter verification failed.` */
  errors?: Record<string, string>;
  /** The request or task that failed, for the message. */
  context?: string;
}

/** A Proxmox API failure: its kind (the table above), Proxmox's own text, and whether to retry. */
export class PveError extends Error {
  override name = 'PveError';
  readonly retryable: boolean;
  readonly status?: number;
  readonly errors?: Record<string, string>;
  /** Proxmox's text exactly as it sent it (without the trailing newline). */
  readonly pveMessage: string;

  constructor(
    readonly kind: PveErrorKind,
    pveMessage: string,
    details: PveErrorDetails = {},
  ) {
    const fields = details.errors
      ? ': ' +
        Object.entries(details.errors)
          .map(([key, msg]) => `${key}: ${msg.trim()}`)
          .join('; ')
      : '';
    super(`${details.context ? details.context + ': ' : ''}${pveMessage}${fields}`);
    const { retryable } = KINDS[kind];
    this.retryable = typeof retryable === 'function' ? retryable(pveMessage) : retryable;
    this.pveMessage = pveMessage;
    this.status = details.status;
    this.errors = details.errors;
  }
}

/** Whether `err` is a Proxmox failure of one of `kinds` (of any kind when none are named). */
export function isPveError(err: unknown, ...kinds: PveErrorKind[]): err is PveError {
  return err instanceof PveError && (kinds.length === 0 || kinds.includes(err.kind));
}

/**
 * Classifies by Proxmox's text first: PVE answers 500 for "not found", "locked" and most other
 * failures alike, so the status code alone decides nothing (proxmox-api.md §1.4).
 */
export function classifyPveError(pveMessage: string, details: PveErrorDetails = {}): PveError {
  const text = pveMessage.trim();
  const { status } = details;
  if (status !== undefined && status >= 595 && status <= 599) return new PveError('timeout', text, details);
  if (status === 401 || status === 403) return new PveError('permission', text, details);
  if (status === 400 || details.errors) {
    if (details.errors && Object.values(details.errors).some((m) => m.trim() === 'no such task')) {
      return new PveError('not-found', text, details);
    }
    return new PveError('parameter', text, details);
  }
  if (
    /^Configuration file '.*' does not exist$/.test(text) ||
    /^unable to find configuration file for VM \d+/.test(text)
  ) {
    return new PveError('not-found', text, details);
  }
  if (/^VM is locked \(/.test(text)) return new PveError('locked', text, details);
  if (/can't lock file '.*' - got timeout|cfs-lock '.*' error: got lock request timeout/.test(text)) {
    return new PveError('lock-timeout', text, details);
  }
  if (/^VM \d+ already running$/.test(text)) return new PveError('already-running', text, details);
  if (text === 'QEMU guest agent is not running' || /^VM \d+ qmp command '.*' failed - got timeout$/.test(text)) {
    return new PveError('agent-not-running', text, details);
  }
  if (/^Permission check failed/.test(text)) return new PveError('permission', text, details);
  if (/^snapshot name '.*' already used$/.test(text)) return new PveError('snapshot-exists', text, details);
  if (/^snapshot '.*' does not exist$/.test(text)) return new PveError('snapshot-missing', text, details);
  return new PveError('other', text, details);
}

/**
 * Proxmox's refusals that retrying cannot fix (parameters, permissions, a missing VM or template) keep Proxmox's
 * text but stop the activity's retries.
 */
export async function permanentIfPve<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof PveError && !err.retryable) throw new PermanentBackendError(err.message);
    throw err;
  }
}
