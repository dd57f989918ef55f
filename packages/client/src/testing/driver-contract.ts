/**
 * The contract every SQLite driver must pass. Run it from a vitest file:
 *
 * @example
 * import { describeDriverContract } from '@dovetail/client/driver-contract';
 * describeDriverContract('better-sqlite3', async () => {
 *   const directory = await mkdtemp(join(tmpdir(), 'contract-'));
 *   return { driver: nodeDriver({ directory }), cleanup: () => rm(directory, { recursive: true }) };
 * });
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteDriverError } from '../driver.js';
import type { SqliteConnection, SqliteDriver } from '../driver.js';

export interface DriverFixture {
  readonly driver: SqliteDriver;
  readonly cleanup: () => Promise<void>;
}

export function describeDriverContract(name: string, make: () => Promise<DriverFixture>): void {
  describe(`driver contract: ${name}`, () => {
    let fixture: DriverFixture;
    let conn: SqliteConnection | undefined;
    const open = async (file = 'contract.db'): Promise<SqliteConnection> => {
      conn = await fixture.driver.open(file);
      return conn;
    };

    beforeEach(async () => {
      fixture = await make();
    });
    afterEach(async () => {
      await conn?.close().catch(() => undefined);
      conn = undefined;
      await fixture.cleanup();
    });

    it('creates, finds and removes database files', async () => {
      expect(await fixture.driver.exists('a.db')).toBe(false);
      const c = await open('a.db');
      await c.exec('CREATE TABLE t (x TEXT)');
      await c.close();
      conn = undefined;
      expect(await fixture.driver.exists('a.db')).toBe(true);
      await fixture.driver.remove('a.db');
      expect(await fixture.driver.exists('a.db')).toBe(false);
      await fixture.driver.remove('a.db'); // removing a missing file is fine
    });

    it('keeps data across close and reopen', async () => {
      let c = await open();
      await c.exec('CREATE TABLE t (x TEXT)');
      await c.run('INSERT INTO t VALUES (?)', ['kept']);
      await c.close();
      c = await open();
      expect(await c.all('SELECT x FROM t')).toEqual([{ x: 'kept' }]);
    });

    it('round-trips values and reports changes', async () => {
      const c = await open();
      await c.exec('CREATE TABLE t (a TEXT, b INTEGER, c REAL, d BLOB, e TEXT); CREATE TABLE u (x INTEGER)');
      const r = await c.run('INSERT INTO t VALUES (?, ?, ?, ?, ?)', ['é ✓', 42, 1.5, new Uint8Array([1, 2, 3]), null]);
      expect(r.changes).toBe(1);
      const [row] = await c.all('SELECT a, b, c, d, e FROM t');
      expect(row?.a).toBe('é ✓');
      expect(Number(row?.b)).toBe(42);
      expect(row?.c).toBe(1.5);
      expect([...(row?.d as Uint8Array)]).toEqual([1, 2, 3]);
      expect(row?.e).toBeNull();
      expect((await c.run('UPDATE t SET b = b + 1')).changes).toBe(1);
      expect((await c.run('DELETE FROM u')).changes).toBe(0);
    });

    it('runs a batch in order and names the failing entry', async () => {
      const c = await open();
      await c.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
      expect((await c.runMany('INSERT INTO t VALUES (?)', [['a'], ['b'], ['c']])).changes).toBe(3);
      const error = await c.runMany('INSERT INTO t VALUES (?)', [['d'], ['a'], ['e']]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SqliteDriverError);
      expect((error as SqliteDriverError).sqliteCode).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
      expect((error as SqliteDriverError).batchIndex).toBe(1);
      expect(await c.all('SELECT id FROM t ORDER BY id')).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }]);
    });

    it('turns foreign keys on outside a transaction and reads them back', async () => {
      const c = await open();
      await c.exec('PRAGMA foreign_keys = ON');
      expect(await c.all('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    });

    it('reports a deferred key failure at COMMIT and keeps the transaction open to inspect', async () => {
      const c = await open();
      await c.exec('PRAGMA foreign_keys = ON');
      await c.exec('CREATE TABLE p (id TEXT PRIMARY KEY); CREATE TABLE ch (id TEXT PRIMARY KEY, p TEXT REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)');
      await c.exec('BEGIN');
      await c.run('INSERT INTO ch VALUES (?, ?)', ['c1', 'nope']);
      const error = await c.exec('COMMIT').catch((e: unknown) => e);
      expect((error as SqliteDriverError).sqliteCode).toBe('SQLITE_CONSTRAINT_FOREIGNKEY');
      const broken = await c.all('PRAGMA foreign_key_check(ch)');
      expect(broken).toHaveLength(1);
      expect(broken[0]).toMatchObject({ table: 'ch', parent: 'p', fkid: 0 });
      await c.exec('ROLLBACK');
      expect(await c.all('SELECT * FROM ch')).toEqual([]);
      await c.run('INSERT INTO p VALUES (?)', ['ok']); // still usable
    });

    it('leaves the connection usable after a failed statement in a transaction', async () => {
      const c = await open();
      await c.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
      await c.exec('BEGIN');
      await c.run('INSERT INTO t VALUES (?)', ['a']);
      await expect(c.run('INSERT INTO t VALUES (?)', ['a'])).rejects.toBeInstanceOf(SqliteDriverError);
      await c.exec('ROLLBACK');
      await c.run('INSERT INTO t VALUES (?)', ['b']);
      expect(await c.all('SELECT id FROM t')).toEqual([{ id: 'b' }]);
    });

    it('answers EXPLAIN with opcodes and operands', async () => {
      const c = await open();
      await c.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
      const plan = await c.all('EXPLAIN SELECT * FROM t WHERE id = ?', ['x']);
      expect(plan.some((r) => r.opcode === 'OpenRead' && typeof r.p2 === 'number')).toBe(true);
    });

    it('reports syntax errors with a SQLite code', async () => {
      const c = await open();
      const error = await c.run('SELEC nonsense').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SqliteDriverError);
      expect((error as SqliteDriverError).sqliteCode).toMatch(/^SQLITE_/);
    });
  });
}
