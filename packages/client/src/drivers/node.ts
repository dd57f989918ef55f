/**
 * The Node driver, over better-sqlite3 (an optional peer dependency).
 *
 * @example
 * import { nodeDriver } from '@dovetail/client/node';
 * const driver = nodeDriver({ directory: './data' });
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteDriverError } from '../driver.js';
import type { RunResult, SqlRow, SqliteConnection, SqliteDriver, SqlValue } from '../driver.js';

export interface NodeDriverOptions {
  /** Where the database files live; created if missing. */
  readonly directory: string;
  /** Prepared statements kept per connection. Default 256. */
  readonly statementCacheSize?: number;
}

const JOURNALS = ['', '-wal', '-shm', '-journal'];

export function nodeDriver(options: NodeDriverOptions): SqliteDriver {
  const cacheSize = options.statementCacheSize ?? 256;
  const pathOf = (file: string): string => {
    if (file.includes('/') || file.includes('\\') || file === '' || file === '.' || file === '..') {
      throw new SqliteDriverError(`database name '${file}' must be a plain file name`, 'SQLITE_MISUSE');
    }
    return join(options.directory, file);
  };
  return {
    name: 'better-sqlite3',
    open(file) {
      mkdirSync(options.directory, { recursive: true });
      const path = pathOf(file);
      try {
        return Promise.resolve(new NodeConnection(new Database(path), cacheSize));
      } catch (error) {
        return Promise.reject(wrap(error));
      }
    },
    remove(file) {
      const path = pathOf(file);
      for (const suffix of JOURNALS) rmSync(path + suffix, { force: true });
      return Promise.resolve();
    },
    exists(file) {
      return Promise.resolve(existsSync(pathOf(file)));
    },
  };
}

type Statement = Database.Statement<unknown[], unknown>;

class NodeConnection implements SqliteConnection {
  readonly #db: Database.Database;
  readonly #cache = new Map<string, Statement>();
  readonly #cacheSize: number;

  constructor(db: Database.Database, cacheSize: number) {
    this.#db = db;
    this.#cacheSize = cacheSize;
  }

  #prepare(sql: string): Statement {
    let stmt = this.#cache.get(sql);
    if (stmt) {
      // Keep recently used statements at the end (LRU order).
      this.#cache.delete(sql);
      this.#cache.set(sql, stmt);
      return stmt;
    }
    stmt = this.#db.prepare(sql);
    this.#cache.set(sql, stmt);
    if (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    return stmt;
  }

  exec(sql: string): Promise<void> {
    try {
      this.#db.exec(sql);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(wrap(error));
    }
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    try {
      const info = this.#prepare(sql).run(...params);
      return Promise.resolve({ changes: info.changes });
    } catch (error) {
      return Promise.reject(wrap(error));
    }
  }

  all<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    try {
      return Promise.resolve(this.#prepare(sql).all(...params) as R[]);
    } catch (error) {
      return Promise.reject(wrap(error));
    }
  }

  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<RunResult> {
    let index = 0;
    try {
      const stmt = this.#prepare(sql);
      let changes = 0;
      for (; index < paramsList.length; index++) changes += stmt.run(...(paramsList[index] ?? [])).changes;
      return Promise.resolve({ changes });
    } catch (error) {
      return Promise.reject(wrap(error, index));
    }
  }

  close(): Promise<void> {
    this.#cache.clear();
    this.#db.close();
    return Promise.resolve();
  }
}

function wrap(error: unknown, batchIndex?: number): SqliteDriverError {
  if (error instanceof Database.SqliteError) {
    return new SqliteDriverError(error.message, error.code, batchIndex === undefined ? { cause: error } : { cause: error, batchIndex });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SqliteDriverError(message, 'SQLITE_ERROR', batchIndex === undefined ? { cause: error } : { cause: error, batchIndex });
}
