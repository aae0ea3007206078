// The workspace workflow's bookkeeping, free of Temporal calls: one holder at a time, a first-come line of
// waiters, and the history of every attachment. Deterministic, so it is tested without a server.
import {
  heldByText,
  type WorkspaceAttachment,
  type WorkspaceCarried,
  type WorkspaceHolder,
  type WorkspaceStatus,
} from '../common/workspace';

/** Attachments a continued run keeps: the latest ones (the whole list grows with every job). */
const HISTORY_KEPT = 200;

export type RequestOutcome = { granted: true } | { queued: true } | { refused: string };

export class WorkspaceBook {
  status: WorkspaceStatus;
  holder?: WorkspaceHolder;
  readonly waiting: WorkspaceHolder[];
  readonly attachments: WorkspaceAttachment[];

  constructor(
    readonly name: string,
    carried?: WorkspaceCarried,
  ) {
    this.status = carried?.status ?? 'CREATING';
    this.holder = carried?.holder;
    this.waiting = [...(carried?.waiting ?? [])];
    this.attachments = [...(carried?.attachments ?? [])];
  }

  /** Ready for sandboxes (the storage exists and is not going away). */
  get usable(): boolean {
    return this.status === 'AVAILABLE' || this.status === 'ATTACHED';
  }

  /**
   * A job asks. Its own repeated request (a lost grant) is granted again; with `wait: false` a held
   * workspace refuses at once, naming the holder; otherwise it joins the line.
   */
  request(asker: WorkspaceHolder, wait: boolean): RequestOutcome {
    if (this.holder?.workflowId === asker.workflowId) return { granted: true };
    if (this.waiting.some((w) => w.workflowId === asker.workflowId)) return { queued: true };
    if (!wait && this.holder) return { refused: heldByText(this.name, this.holder) };
    if (!wait && this.waiting.length > 0) {
      return { refused: `workspace ${this.name} is promised to job ${this.waiting[0]!.jobId}, which waits for it` };
    }
    this.waiting.push(asker);
    return { queued: true };
  }

  /** Hands the workspace to the head of the line when it is free; returns the new holder. */
  admit(now: number): WorkspaceHolder | undefined {
    if (this.holder || !this.usable) return undefined;
    const next = this.waiting.shift();
    if (!next) return undefined;
    this.holder = { ...next, since: now };
    this.status = 'ATTACHED';
    this.attachments.push({ jobId: next.jobId, workflowId: next.workflowId, grantedAt: now });
    if (this.attachments.length > HISTORY_KEPT) this.attachments.splice(0, this.attachments.length - HISTORY_KEPT);
    return this.holder;
  }

  /** The holder's sandbox is VMID `vmid`. */
  attached(workflowId: string, vmid: number): void {
    if (this.holder?.workflowId !== workflowId) return;
    const current = this.current();
    if (current) current.vmid = vmid;
  }

  /** The holder lets go, or a waiter leaves the line; false for anyone else. */
  release(workflowId: string, now: number, note?: string): boolean {
    const waitingAt = this.waiting.findIndex((w) => w.workflowId === workflowId);
    if (waitingAt >= 0) {
      this.waiting.splice(waitingAt, 1);
      return true;
    }
    if (this.holder?.workflowId !== workflowId) return false;
    const current = this.current();
    if (current) Object.assign(current, { releasedAt: now }, note ? { note } : {});
    this.holder = undefined;
    if (this.status === 'ATTACHED') this.status = 'AVAILABLE';
    return true;
  }

  /** Everyone in line, removed (the workspace is going away). */
  drainWaiting(): WorkspaceHolder[] {
    return this.waiting.splice(0);
  }

  carried(): WorkspaceCarried {
    return {
      status: this.status,
      ...(this.holder ? { holder: this.holder } : {}),
      waiting: [...this.waiting],
      attachments: this.attachments.map((a) => ({ ...a })),
    };
  }

  private current(): WorkspaceAttachment | undefined {
    const holder = this.holder;
    if (!holder) return undefined;
    for (let i = this.attachments.length - 1; i >= 0; i--) {
      const a = this.attachments[i]!;
      if (a.workflowId === holder.workflowId && a.releasedAt === undefined) return a;
    }
    return undefined;
  }
}
