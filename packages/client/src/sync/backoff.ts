/**
 * The wait before attempt number `failures` + 1: `firstMs` doubled for
 * each failure after the first, capped at `capMs`, then spread over half
 * to all of it (`random` in [0, 1)), so that devices that failed together
 * do not all come back at the same moment.
 */
export function backoffMs(failures: number, firstMs: number, capMs: number, random: () => number): number {
  const base = Math.min(capMs, firstMs * 2 ** Math.min(Math.max(failures, 1) - 1, 20));
  return Math.round(base * (0.5 + random() / 2));
}

/** The runner's defaults (documented in docs/sync.md, which a test holds to them). */
export const SYNC_DEFAULTS = {
  writeDelayMs: 0,
  intervalMs: 30_000,
  initialBackoffMs: 500,
  maxBackoffMs: 60_000,
  pushBatchSize: 100,
} as const;

/** The poke channel's reconnection defaults (`httpTransport`). */
export const RECONNECT_DEFAULTS = {
  reconnectMs: 1_000,
  maxReconnectMs: 60_000,
} as const;
