import type { PreparedNames } from './prepared-names.js';

/**
 * The server's view of Postgres: the same SQL runs on embedded PGlite and
 * on any Postgres server reached through `pg`. Identifiers in SQL come only
 * from the schema, never from requests; values always travel as parameters.
 */
export interface SqlQueryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * One connection held for a while, for work that manages its own
 * transaction to save round trips: `script` sends several statements at
 * once (Postgres's simple query protocol). Scripts take no parameters, so
 * every value in them must be quoted with `quoteLiteral`.
 */
export interface SqlSession extends SqlQueryable {
  /** Runs the statements in one round trip; resolves to the rows of each, in order. */
  script(text: string): Promise<Record<string, unknown>[][]>;
  /** The statements prepared on this session's connection (kept per connection by the driver; see script.ts). */
  readonly prepared: PreparedNames;
}

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

export interface Sql extends SqlQueryable {
  /** `embedded` (PGlite) or `postgres`. */
  readonly kind: 'embedded' | 'postgres';
  /** Runs `fn` in one transaction; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>, options?: { isolation?: Isolation; readOnly?: boolean }): Promise<T>;
  /**
   * Runs `fn` on one connection of its own. The session manages its own
   * transaction; if `fn` throws, a ROLLBACK is sent before the connection
   * is released.
   */
  session<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; resolves to the unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A Postgres error as both drivers report it: `code` is the SQLSTATE. */
export interface PgError {
  readonly code?: string;
  readonly constraint?: string;
  readonly message: string;
}

export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function beginSql(options: { isolation?: Isolation; readOnly?: boolean } = {}): string {
  return `BEGIN ISOLATION LEVEL ${(options.isolation ?? 'read committed').toUpperCase()}${options.readOnly ? ' READ ONLY' : ''}`;
}

/**
 * A string as a literal for a `script`: an escape string (`E'...'`), read
 * the same way whatever `standard_conforming_strings` says.
 */
export function scriptLiteral(value: string): string {
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
