// A counting semaphore per key (a storage): at most `limit` holders at once, the rest wait in FIFO order.

export class KeyedSemaphore {
  private readonly active = new Map<string, number>();
  private readonly queues = new Map<string, (() => void)[]>();

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`semaphore limit must be at least 1, got ${limit}`);
  }

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    if ((this.active.get(key) ?? 0) >= this.limit) {
      await new Promise<void>((resolve) => {
        const queue = this.queues.get(key) ?? [];
        queue.push(resolve);
        this.queues.set(key, queue);
      });
    } else {
      this.active.set(key, (this.active.get(key) ?? 0) + 1);
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, so a newcomer can never overtake the queue.
      const next = this.queues.get(key)?.shift();
      if (next) next();
      else {
        const left = (this.active.get(key) ?? 1) - 1;
        if (left > 0) this.active.set(key, left);
        else this.active.delete(key);
      }
      if (this.queues.get(key)?.length === 0) this.queues.delete(key);
    }
  }
}
