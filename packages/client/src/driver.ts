/**
 * The few things the engine needs from a SQLite driver. Every method is
 * asynchronous so that drivers running SQLite in a worker (WASM with OPFS)
 * or behind a native bridge (expo-sqlite) fit the same interface; a
 * synchronous driver simply resolves at once.
 *
 * A connection is used by one caller at a time: the engine serializes
 * access itself (see `SerialConnection`), so drivers need not.
 */

export type SqlValue = string | number | bigint | Uint8Array | null;
export type SqlRow = Record<string, SqlValue>;

export interface RunResult {
  /** Rows changed by the statement (or by all statements, for runMany). */
  readonly changes: number;
}

export interface SqliteConnection {
  /** Runs one or more statements without parameters or results. */
  exec(sql: string): Promise<void>;
  /** Runs one statement that returns no rows. */
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
  /** Runs one statement and returns its rows as objects keyed by column name. */
  all<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
  /**
   * Runs one statement once per parameter list, in order, and stops at the
   * first failure, whose error carries `batchIndex`. One call instead of
   * thousands matters when every call crosses a thread or a bridge.
   */
  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<RunResult>;
  close(): Promise<void>;
}

export interface SqliteDriver {
  /** Shown in errors, e.g. `better-sqlite3`. */
  readonly name: string;
  /** Opens (creating if needed) the database called `file`. */
  open(file: string): Promise<SqliteConnection>;
  /** Deletes the database `file` with its journal files. Missing is fine. */
  remove(file: string): Promise<void>;
  exists(file: string): Promise<boolean>;
}

/**
 * What a driver throws for a failed statement. `sqliteCode` is SQLite's
 * extended result code name, e.g. `SQLITE_CONSTRAINT_FOREIGNKEY`.
 */
export class SqliteDriverError extends Error {
  override readonly name = 'SqliteDriverError';
  readonly sqliteCode: string;
  readonly batchIndex: number | undefined;

  constructor(message: string, sqliteCode: string, options: { cause?: unknown; batchIndex?: number } = {}) {
    super(message, { cause: options.cause });
    this.sqliteCode = sqliteCode;
    this.batchIndex = options.batchIndex;
  }
}

export function sqliteCodeOf(error: unknown): string | undefined {
  return error instanceof SqliteDriverError ? error.sqliteCode : undefined;
}
