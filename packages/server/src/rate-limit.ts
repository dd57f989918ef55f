export interface RateLimit {
  /** Sustained requests per second per user. */
  readonly perSecond: number;
  /** Requests a user may make at once after a quiet period. */
  readonly burst: number;
}

/** Buckets kept before the full ones are dropped (a full bucket is the same as none). */
const SWEEP_AT = 10_000;

/** A token bucket per user, on an injected clock. */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limit: RateLimit, now: () => number) {
    if (!(limit.perSecond > 0) || !Number.isFinite(limit.perSecond)) throw new Error(`rateLimit.perSecond must be a positive number, got ${limit.perSecond}`);
    if (!(limit.burst >= 1) || !Number.isFinite(limit.burst)) throw new Error(`rateLimit.burst must be at least 1, got ${limit.burst}`);
    this.#limit = limit;
    this.#now = now;
  }

  /** Users with a bucket that is not full. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `key`; returns 0, or the milliseconds to wait. */
  take(key: string): number {
    const now = this.#now();
    if (this.#buckets.size >= SWEEP_AT && !this.#buckets.has(key)) this.#sweep(now);
    const b = this.#buckets.get(key) ?? { tokens: this.#limit.burst, at: now };
    b.tokens = Math.min(this.#limit.burst, b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return ((1 - b.tokens) / this.#limit.perSecond) * 1000;
  }

  /** Drops the buckets that have refilled: every user who made many requests once would otherwise be kept for ever. */
  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#limit.perSecond >= this.#limit.burst) this.#buckets.delete(key);
    }
  }
}
