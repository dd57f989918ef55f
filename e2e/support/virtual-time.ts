import type { Clock, Timers } from '@dovetail/client';

/**
 * Time that moves only when the test moves it: the client's clock and its
 * timers in one, so a test can say what is due, and when. Timers run on
 * their own steady time, as the platform's do; `setClock` moves only what
 * `now()` reads, as when a device's clock is set.
 */
export class VirtualTime implements Clock, Timers {
  #now = 1_000_000;
  /** What `now()` adds to the steady time (the device's clock setting). */
  #offset = 0;
  #next = 1;
  readonly #due = new Map<number, { readonly at: number; readonly fn: () => void }>();

  now(): number {
    return this.#now + this.#offset;
  }

  /** The steady time the timers run on (unlike `now()`, never set back). */
  steady(): number {
    return this.#now;
  }

  /** Sets the device's clock `ms` forward (or back, if negative); timers are not affected. */
  setClock(ms: number): void {
    this.#offset += ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#due.delete(handle);
  }

  /** The pending timers' delays from now, soonest first. */
  pending(): number[] {
    return [...this.#due.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time on by `ms`, running each timer that falls due at its own time, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#due) if (entry[1].at <= end && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.#due.delete(first[0]);
      this.#now = first[1].at;
      first[1].fn();
    }
    this.#now = end;
  }
}
