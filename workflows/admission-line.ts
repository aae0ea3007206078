// The admission workflow's state: who holds a slot, who waits, and whether the head of the line fits.
// Plain logic (no Temporal calls), so it is deterministic and testable on its own.
import type { AdmissionState, AdmissionView, Capacity, LineEntry, SlotRequest } from '../common/admission';

export class AdmissionLine {
  private readonly holding: LineEntry[];
  private readonly waiting: LineEntry[];

  constructor(
    private capacity: Capacity,
    carried?: AdmissionState,
  ) {
    this.holding = [...(carried?.holding ?? [])];
    this.waiting = [...(carried?.waiting ?? [])];
  }

  /**
   * Joins the line. A repeated request (a retried activity) keeps its place; one from a job that already
   * holds a slot says so: its grant may have been lost, and is sent again.
   */
  request(request: SlotRequest, now: number): 'queued' | 'already-waiting' | 'already-holding' {
    if (this.holding.some((e) => e.holder === request.holder)) return 'already-holding';
    if (this.waiting.some((e) => e.holder === request.holder)) return 'already-waiting';
    const { holder, cores, memoryMb } = request;
    this.waiting.push({ holder, cores, memoryMb, since: now });
    return 'queued';
  }

  /** Frees a slot, or takes a job out of the line; false when the holder was unknown. */
  release(holder: string): boolean {
    for (const list of [this.holding, this.waiting]) {
      const index = list.findIndex((e) => e.holder === holder);
      if (index >= 0) {
        list.splice(index, 1);
        return true;
      }
    }
    return false;
  }

  setCapacity(capacity: Capacity): void {
    this.capacity = capacity;
  }

  /** The head of the line fits in what is free. */
  canAdmit(): boolean {
    const head = this.waiting[0];
    if (!head) return false;
    const used = this.used();
    return used.cores + head.cores <= this.capacity.cores && used.memoryMb + head.memoryMb <= this.capacity.memoryMb;
  }

  /**
   * Strictly first come, first served: the head is admitted while it fits, and nobody overtakes it (a large
   * job would otherwise starve behind a stream of small ones).
   */
  admit(now: number): LineEntry[] {
    const admitted: LineEntry[] = [];
    while (this.canAdmit()) {
      const entry = { ...this.waiting.shift()!, since: now };
      this.holding.push(entry);
      admitted.push(entry);
    }
    return admitted;
  }

  hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  holders(): string[] {
    return this.holding.map((e) => e.holder);
  }

  used(): Capacity {
    return this.holding.reduce((sum, e) => ({ cores: sum.cores + e.cores, memoryMb: sum.memoryMb + e.memoryMb }), {
      cores: 0,
      memoryMb: 0,
    });
  }

  state(): AdmissionState {
    return { holding: [...this.holding], waiting: [...this.waiting] };
  }

  view(node: string): AdmissionView {
    return { node, capacity: this.capacity, used: this.used(), ...this.state() };
  }
}
