/** Timers, injected so tests drive time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

type Handle = { readonly immediate: ReturnType<typeof setImmediate> } | { readonly timeout: ReturnType<typeof setTimeout> };

/**
 * The platform's timers, the runner's default. A delay of 0 runs on the
 * next turn of the event loop where the platform has `setImmediate`
 * (Node's `setTimeout` waits at least 1 ms, which a sync after a write or
 * a poke would spend idle); elsewhere it is an ordinary timeout.
 */
export const systemTimers: Timers = {
  setTimeout(fn, ms): Handle {
    return ms <= 0 && typeof setImmediate === 'function' ? { immediate: setImmediate(fn) } : { timeout: setTimeout(fn, ms) };
  },
  clearTimeout(handle) {
    const h = handle as Handle | undefined;
    if (!h) return;
    if ('immediate' in h) clearImmediate(h.immediate);
    else clearTimeout(h.timeout);
  },
};
