import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreparedNames } from '../src/prepared-names.js';
import { call, PREPARED_PREFIX, runScript } from '../src/script.js';
import type { SqlSession } from '../src/sql.js';
import { openTestDatabase } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';

/**
 * Scripts with prepared statements: each statement is prepared once per
 * connection, what a failed script prepared is read back from Postgres,
 * and a connection keeps a bounded number of them.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
}, 60_000);
afterAll(() => db.close());

const ours = async (s: SqlSession): Promise<string[]> =>
  (await s.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE starts_with(name, $1) ORDER BY name`, [PREPARED_PREFIX])).map((r) => r.name);

/** A session whose script texts are recorded, with its own record of prepared names. */
function recording(s: SqlSession, prepared: PreparedNames): SqlSession & { sent: string[] } {
  const sent: string[] = [];
  return { query: (text, params) => s.query(text, params), script: (text) => (sent.push(text), s.script(text)), prepared, sent };
}

describe('runScript', () => {
  it('prepares a statement on first use only, and answers each step in order', async () => {
    await db.sql.session(async (raw) => {
      await raw.script('DEALLOCATE ALL');
      const s = recording(raw, new PreparedNames());
      const add = call('SELECT $1::int + $2::int AS n', ["'1'", "'2'"]);
      expect(await runScript(s, ['SELECT 0 AS n', add])).toEqual([[{ n: 0 }], [{ n: 3 }]]);
      expect(await runScript(s, [add, add])).toEqual([[{ n: 3 }], [{ n: 3 }]]);
      expect(s.sent.map((t) => (t.match(/PREPARE /g) ?? []).length)).toEqual([1, 0]);
      expect(await ours(raw)).toHaveLength(1);
    });
  });

  it('after a script fails part way, reads back what it prepared instead of preparing it twice', async () => {
    await db.sql.session(async (raw) => {
      await raw.script('DEALLOCATE ALL');
      const s = recording(raw, new PreparedNames());
      const one = call('SELECT $1::int AS n', ["'1'"]);
      // The PREPARE goes through, then the script fails: was it prepared? Postgres knows.
      await expect(runScript(s, [one, 'SELECT 1 / 0'])).rejects.toThrow(/division by zero/);
      expect(s.prepared.stale).toBe(true);
      expect(await runScript(s, [one])).toEqual([[{ n: 1 }]]);
      expect(s.prepared.stale).toBe(false);
      expect(s.sent.at(-1)).not.toContain('PREPARE');
    });
  });

  it('keeps at most its capacity, letting go of the least recently used', async () => {
    await db.sql.session(async (raw) => {
      await raw.script('DEALLOCATE ALL');
      const s = recording(raw, new PreparedNames(2));
      const q = (n: number) => call(`SELECT ${n} + $1::int AS n`, ["'0'"]);
      await runScript(s, [q(1)]);
      await runScript(s, [q(2)]);
      await runScript(s, [q(1)]); // 1 is now the most recent
      expect(await runScript(s, [q(3)])).toEqual([[{ n: 3 }]]);
      expect(s.sent.at(-1)).toMatch(/^DEALLOCATE /);
      expect(await ours(raw)).toHaveLength(2);
      expect(await runScript(s, [q(1)])).toEqual([[{ n: 1 }]]);
      expect(s.sent.at(-1)).not.toContain('PREPARE');
    });
  });
});
