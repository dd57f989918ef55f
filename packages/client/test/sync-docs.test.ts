import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RECONNECT_DEFAULTS, SYNC_DEFAULTS } from '../src/sync/backoff.js';

/** docs/sync.md's table of sync options gives the defaults the code uses. */
describe('docs/sync.md', () => {
  const page = readFileSync(new URL('../../../docs/sync.md', import.meta.url), 'utf8');
  /** The default column of the row whose option column mentions `name`. */
  const documented = (name: string): string => {
    const row = page.split('\n').find((line) => line.startsWith('|') && (line.split('|')[1] ?? '').includes(`\`${name}\``));
    if (!row) throw new Error(`docs/sync.md has no row for ${name}`);
    return (row.split('|')[2] ?? '').trim();
  };
  const n = (v: number): string => v.toLocaleString('en');

  it('gives the runner defaults the code uses', () => {
    expect(documented('writeDelayMs')).toBe(n(SYNC_DEFAULTS.writeDelayMs));
    expect(documented('intervalMs')).toBe(n(SYNC_DEFAULTS.intervalMs));
    expect(documented('initialBackoffMs')).toBe(`${n(SYNC_DEFAULTS.initialBackoffMs)} / ${n(SYNC_DEFAULTS.maxBackoffMs)}`);
    expect(documented('pushBatchSize')).toBe(n(SYNC_DEFAULTS.pushBatchSize));
  });

  it("gives the poke channel's reconnection defaults the code uses", () => {
    expect(documented('reconnectMs')).toBe(`${n(RECONNECT_DEFAULTS.reconnectMs)} / ${n(RECONNECT_DEFAULTS.maxReconnectMs)}`);
  });
});
