import type { RunResult, SqlRow, SqliteConnection, SqlValue } from './driver.js';
import { DovetailError } from './errors.js';

/**
 * Serializes every use of one connection: a statement waits until the one
 * before it, or the transaction before it, has finished. Two callers can
 * never interleave statements on one native handle, and a reader never sees
 * another caller's uncommitted transaction.
 */
export class SerialConnection {
  readonly #conn: SqliteConnection;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` with exclusive use of the connection. */
  exclusive<T>(fn: (conn: SqliteConnection) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new DovetailError('database_closed', 'the database was closed before this operation could run');
      return fn(this.#conn);
    };
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  exec(sql: string): Promise<void> {
    return this.exclusive((c) => c.exec(sql));
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult> {
    return this.exclusive((c) => c.run(sql, params));
  }
  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.exclusive((c) => c.all<R>(sql, params));
  }

  /**
   * Runs `fn` inside `BEGIN IMMEDIATE ... COMMIT` with exclusive use of the
   * connection. Keys are checked at COMMIT (they are declared deferred). If COMMIT fails, `onCommitError`
   * may inspect the still-open transaction (e.g. `foreign_key_check`) and
   * return the error to throw; the transaction is then rolled back. After any
   * failure the connection is out of the transaction and usable.
   */
  transaction<T>(
    fn: (tx: SqliteConnection) => Promise<T>,
    onCommitError?: (tx: SqliteConnection, error: unknown) => Promise<unknown>,
  ): Promise<T> {
    return this.exclusive(async (conn) => {
      const tx = new TransactionHandle(conn);
      // Every key the engine creates is DEFERRABLE INITIALLY DEFERRED, so keys
      // are checked at COMMIT without `PRAGMA defer_foreign_keys` (which
      // would also make SQLite recompile every prepared statement).
      await conn.run('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        try {
          await conn.run('COMMIT');
        } catch (error) {
          throw onCommitError ? await onCommitError(conn, error) : error;
        }
        return result;
      } catch (error) {
        await rollbackQuietly(conn);
        throw error;
      } finally {
        tx.revoke();
      }
    });
  }

  /** Waits for queued work, then closes. Later calls fail with `database_closed`. */
  close(): Promise<void> {
    return this.exclusive(async (conn) => {
      this.#closed = true;
      await conn.close();
    });
  }
}

async function rollbackQuietly(conn: SqliteConnection): Promise<void> {
  try {
    await conn.run('ROLLBACK');
  } catch {
    // SQLite already rolled back (e.g. after SQLITE_FULL); nothing is open.
  }
}

/** A view of the connection that stops working when the transaction ends. */
class TransactionHandle implements SqliteConnection {
  readonly #conn: SqliteConnection;
  #live = true;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
  }

  revoke(): void {
    this.#live = false;
  }

  #check(): void {
    if (!this.#live) throw new DovetailError('database_closed', 'a transaction handle was used after its transaction ended');
  }

  exec(sql: string): Promise<void> {
    this.#check();
    return this.#conn.exec(sql);
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult> {
    this.#check();
    return this.#conn.run(sql, params);
  }
  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    this.#check();
    return this.#conn.all<R>(sql, params);
  }
  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<RunResult> {
    this.#check();
    return this.#conn.runMany(sql, paramsList);
  }
  close(): Promise<void> {
    return Promise.reject(new DovetailError('database_closed', 'a transaction cannot close its connection'));
  }
}
