// A token bucket per key (the guest API keys it by source address): a burst, refilled at a steady rate.
// The caller decides what spends a token: the guest API spends one per refused bootstrap only.

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0 when `key` has a token left, else the whole seconds until it has one. Takes nothing. */
  wait(key: string): number {
    const bucket = this.refilled(key);
    if (bucket.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.refillPerMs / 1000));
  }

  /** Spends one token of `key` (it may go below zero: a flood waits longer). */
  spend(key: string): void {
    this.refilled(key).tokens -= 1;
  }

  private get refillPerMs(): number {
    return this.perMinute / 60_000;
  }

  private refilled(key: string): Bucket {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, updatedAt: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    this.forgetFullBuckets(now, this.refillPerMs);
    return bucket;
  }

  /** A bucket that has refilled completely says nothing: dropping it bounds memory under a scan. */
  private forgetFullBuckets(now: number, refillPerMs: number): void {
    if (this.buckets.size < 1024) return;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * refillPerMs >= this.burst) this.buckets.delete(key);
    }
  }
}
