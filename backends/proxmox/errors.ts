// Typed Proxmox API errors: one class per failure we act on, each with Proxmox's own text and a retry decision.

export type PveErrorKind =
  | 'not-found'
  | 'locked'
  | 'lock-timeout'
  | 'already-running'
  | 'agent-not-running'
  | 'snapshot-exists'
  | 'snapshot-missing'
  | 'parameter'
  | 'permission'
  | 'timeout'
  | 'connection'
  | 'tls'
  | 'other';

export interface PveErrorDetails {
  /** HTTP status; undefined for a failure reported by a task's exitstatus or a dead connection. */
  status?: number;
  /** Per-field messages of a 400 `Parameter verification failed.` */
  errors?: Record<string, string>;
  /** The request or task that failed, for the message. */
  context?: string;
}

export class PveError extends Error {
  override name = 'PveError';
  readonly kind: PveErrorKind = 'other';
  readonly retryable: boolean = false;
  readonly status?: number;
  readonly errors?: Record<string, string>;
  /** Proxmox's text exactly as it sent it (without the trailing newline). */
  readonly pveMessage: string;

  constructor(pveMessage: string, details: PveErrorDetails = {}) {
    const fields = details.errors
      ? ': ' +
        Object.entries(details.errors)
          .map(([key, msg]) => `${key}: ${msg.trim()}`)
          .join('; ')
      : '';
    super(`${details.context ? details.context + ': ' : ''}${pveMessage}${fields}`);
    this.pveMessage = pveMessage;
    this.status = details.status;
    this.errors = details.errors;
  }
}

export class PveNotFoundError extends PveError {
  override name = 'PveNotFoundError';
  override readonly kind = 'not-found';
}
/** `VM is locked (clone)`: another operation holds the VM; it ends by itself. */
export class PveLockedError extends PveError {
  override name = 'PveLockedError';
  override readonly kind = 'locked';
  override readonly retryable = true;
}
/** `can't lock file ... got timeout`: contention on a config or storage flock. */
export class PveLockTimeoutError extends PveError {
  override name = 'PveLockTimeoutError';
  override readonly kind = 'lock-timeout';
  override readonly retryable = true;
}
export class PveAlreadyRunningError extends PveError {
  override name = 'PveAlreadyRunningError';
  override readonly kind = 'already-running';
}
/** The guest is still booting (or has no agent installed): ask again later. */
export class PveAgentNotRunningError extends PveError {
  override name = 'PveAgentNotRunningError';
  override readonly kind = 'agent-not-running';
  override readonly retryable = true;
}
/** `snapshot name 'clean' already used`: for our one snapshot name, a retried snapshot that already succeeded. */
export class PveSnapshotExistsError extends PveError {
  override name = 'PveSnapshotExistsError';
  override readonly kind = 'snapshot-exists';
}
/** `snapshot 'clean' does not exist` (rollback or delete): not a missing VM, which is PveNotFoundError. */
export class PveSnapshotMissingError extends PveError {
  override name = 'PveSnapshotMissingError';
  override readonly kind = 'snapshot-missing';
}
export class PveParameterError extends PveError {
  override name = 'PveParameterError';
  override readonly kind = 'parameter';
}
export class PvePermissionError extends PveError {
  override name = 'PvePermissionError';
  override readonly kind = 'permission';
}
/** 596 (and the other AnyEvent pseudo-statuses 595/597/599): pveproxy gave up on pvedaemon. */
export class PveTimeoutError extends PveError {
  override name = 'PveTimeoutError';
  override readonly kind = 'timeout';
  override readonly retryable = true;
}
export class PveConnectionError extends PveError {
  override name = 'PveConnectionError';
  override readonly kind = 'connection';
  override readonly retryable = true;
}
/** The server's certificate is not the pinned or trusted one: a configuration problem that no retry heals. */
export class PveTlsError extends PveError {
  override name = 'PveTlsError';
  override readonly kind = 'tls';
}
export class PveOtherError extends PveError {
  override name = 'PveOtherError';
  override readonly retryable: boolean;
  constructor(pveMessage: string, details: PveErrorDetails = {}) {
    super(pveMessage, details);
    // Unknown 5xx texts are not retried blindly, except the transient families PVE itself produces.
    this.retryable = /got timeout|got no worker upid|temporarily unavailable/i.test(pveMessage);
  }
}

/**
 * Classifies by Proxmox's text first: PVE answers 500 for "not found", "locked" and most other
 * failures alike, so the status code alone decides nothing (proxmox-api.md §1.4).
 */
export function classifyPveError(pveMessage: string, details: PveErrorDetails = {}): PveError {
  const text = pveMessage.trim();
  const { status } = details;
  if (status !== undefined && status >= 595 && status <= 599) return new PveTimeoutError(text, details);
  if (status === 401 || status === 403) return new PvePermissionError(text, details);
  if (status === 400 || details.errors) {
    if (details.errors && Object.values(details.errors).some((m) => m.trim() === 'no such task')) {
      return new PveNotFoundError(text, details);
    }
    return new PveParameterError(text, details);
  }
  if (
    /^Configuration file '.*' does not exist$/.test(text) ||
    /^unable to find configuration file for VM \d+/.test(text)
  ) {
    return new PveNotFoundError(text, details);
  }
  if (/^VM is locked \(/.test(text)) return new PveLockedError(text, details);
  if (/can't lock file '.*' - got timeout|cfs-lock '.*' error: got lock request timeout/.test(text)) {
    return new PveLockTimeoutError(text, details);
  }
  if (/^VM \d+ already running$/.test(text)) return new PveAlreadyRunningError(text, details);
  if (text === 'QEMU guest agent is not running' || /^VM \d+ qmp command '.*' failed - got timeout$/.test(text)) {
    return new PveAgentNotRunningError(text, details);
  }
  if (/^Permission check failed/.test(text)) return new PvePermissionError(text, details);
  if (/^snapshot name '.*' already used$/.test(text)) return new PveSnapshotExistsError(text, details);
  if (/^snapshot '.*' does not exist$/.test(text)) return new PveSnapshotMissingError(text, details);
  return new PveOtherError(text, details);
}
