import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteConnection, SqliteDriver, SqlRow, SqlValue } from '@dovetail/client';
import { nodeDriver, scenarioClient, tempDir } from './fixtures.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

/**
 * A driver whose every call yields to the event loop first, like a worker
 * or a native bridge would, and that records overlapping calls. The
 * database underneath is real.
 */
function asyncDriver(directory: string): { driver: SqliteDriver; overlaps: () => number } {
  const real = nodeDriver({ directory });
  let inFlight = 0;
  let overlaps = 0;
  const slow =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      inFlight++;
      if (inFlight > 1) overlaps++;
      try {
        await new Promise((r) => setImmediate(r));
        return await fn(...args);
      } finally {
        inFlight--;
      }
    };
  const driver: SqliteDriver = {
    ...real,
    async open(file) {
      const c = await real.open(file);
      const wrapped: SqliteConnection = {
        exec: slow((sql) => c.exec(sql)),
        run: slow((sql, params) => c.run(sql, params)),
        all: <R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]) => slow(() => c.all<R>(sql, params))(),
        runMany: slow((sql, list) => c.runMany(sql, list)),
        close: () => c.close(),
      };
      return wrapped;
    },
  };
  return { driver, overlaps: () => overlaps };
}

describe('one caller at a time per connection (Q6)', () => {
  it('never overlaps statements, and readers never see an open transaction', async () => {
    const { driver, overlaps } = asyncDriver(t.dir);
    const client = scenarioClient(driver);
    const db = await client.bind({ userId: 'ann' });
    await db.mutate('p', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'x' }));
    const counts: number[] = [];
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      work.push(
        db.mutate(`m${i}`, (m) => {
          for (let j = 0; j < 5; j++) m.insert('tasks', { id: `t${i}-${j}`, project_id: 'p1', title: 'x' });
        }),
      );
      // A reader squeezed between: it must see whole mutations only.
      work.push(db.query<{ n: number }>('SELECT count(*) AS n FROM tasks').then((r) => counts.push(r[0]?.n ?? -1)));
    }
    await Promise.all(work);
    expect(overlaps()).toBe(0);
    expect(counts.every((n) => n % 5 === 0)).toBe(true);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(await db.query('SELECT count(*) AS n FROM tasks')).toEqual([{ n: 150 }]);
    await client.signOut();
  });
});
