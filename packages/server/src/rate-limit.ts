export interface RateLimit {
  /** Sustained requests per second per user. */
  readonly perSecond: number;
  /** Requests a user may make at once after a quiet period. */
  readonly burst: number;
}

/** A token bucket per user, on an injected clock. */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limit: RateLimit, now: () => number) {
    this.#limit = limit;
    this.#now = now;
  }

  /** Takes one token for `key`; returns 0, or the milliseconds to wait. */
  take(key: string): number {
    const now = this.#now();
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
}
