import { SignJWT } from 'jose';
import pg from 'pg';
import type { Schema } from '@dovetail/schema';
import { changesChannel, createAuthenticator, currentSchema, embeddedSql, ENGINE_TABLES, postgresSql, SyncServer } from '@dovetail/server';
import type { Logger, Sql, SyncServerOptions } from '@dovetail/server';
import type { SqlSession } from '../../src/sql.js';
import { within } from './http-client.js';

export const SECRET = 'test-secret-that-is-long-enough-for-hs256';
const key = new TextEncoder().encode(SECRET);

/** An HS256 token for `sub`, as Supabase issues them. */
export async function tokenFor(sub: string, options: { expiresIn?: string | number; secret?: string; claims?: Record<string, unknown> } = {}): Promise<string> {
  return new SignJWT({ role: 'authenticated', ...options.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(options.secret ? new TextEncoder().encode(options.secret) : key);
}

export const bearer = async (sub: string): Promise<string> => `Bearer ${await tokenFor(sub)}`;

let counter = 0;

export interface TestDatabase {
  readonly sql: Sql;
  readonly kind: 'embedded' | 'postgres';
  /** A second, independent connection to the same database (two server instances). */
  another(): Promise<Sql>;
  /** A raw client for writing "from anywhere" and for two-connection tests. */
  raw(): Promise<pg.Client | undefined>;
  close(): Promise<void>;
}

/**
 * Real Postgres when DATABASE_URL is set (a fresh schema per call, dropped
 * afterwards), embedded PGlite in memory otherwise.
 */
export async function openTestDatabase(): Promise<TestDatabase> {
  const url = process.env['DATABASE_URL'];
  if (!url) {
    const sql = await embeddedSql();
    return { sql, kind: 'embedded', another: () => Promise.resolve(sql), raw: () => Promise.resolve(undefined), close: () => sql.close() };
  }
  const schemaName = `dt_${process.pid}_${Date.now()}_${++counter}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schemaName}`);
  const opened: Sql[] = [];
  const clients: pg.Client[] = [];
  const open = async (): Promise<Sql> => {
    const s = await postgresSql(url, { searchPath: schemaName, max: 4 });
    opened.push(s);
    return s;
  };
  const sql = await open();
  return {
    sql,
    kind: 'postgres',
    another: open,
    async raw() {
      const c = new pg.Client({ connectionString: url, options: `-c search_path=${schemaName}` });
      await c.connect();
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) await c.end().catch(() => undefined);
      for (const s of opened) await s.close().catch(() => undefined);
      await admin.query(`DROP SCHEMA ${schemaName} CASCADE`);
      await admin.end();
    },
  };
}

/**
 * The payloads notified on the schema's change channel while `during` runs.
 * Notifications arrive in commit order, so once a barrier sent afterwards
 * is heard, everything `during` committed has been heard too.
 */
export async function signalsDuring(sql: Sql, during: () => Promise<void>): Promise<string[]> {
  const channel = changesChannel(await currentSchema(sql));
  const heard: string[] = [];
  const unlisten = await sql.listen(channel, (payload) => heard.push(payload));
  try {
    await during();
    await sql.query(`SELECT pg_notify($1, 'barrier')`, [channel]);
    await within(10_000, 'the barrier notification', (async () => {
      while (!heard.includes('barrier')) await new Promise((r) => setTimeout(r, 5));
    })());
    return heard.filter((p) => p !== 'barrier');
  } finally {
    await unlisten();
  }
}

/**
 * Two raw connections to the test database, for committing out of order;
 * on embedded PGlite (one connection) the test is skipped, saying why.
 */
export async function twoConnections(db: TestDatabase, ctx: { skip(): void }): Promise<[pg.Client, pg.Client]> {
  const a = await db.raw();
  const b = await db.raw();
  if (!a || !b) {
    console.log('skipped: committing out of order needs two connections to one Postgres; runs when DATABASE_URL is set');
    ctx.skip();
    throw new Error('skipped');
  }
  return [a, b];
}

export interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

export async function syncServer(schema: Schema, sql: Sql, options: Partial<SyncServerOptions> = {}): Promise<SyncServer & { logs: LogLine[] }> {
  const log = memoryLogger();
  const server = new SyncServer({ schema, sql, authenticate: createAuthenticator({ secret: SECRET }), log, ...options });
  await server.setup();
  return Object.assign(server, { logs: log.lines });
}

/** Empties every table (between tests sharing one database). */
export async function truncateAll(sql: Sql, schema: Schema): Promise<void> {
  const tables = [...schema.tables.map((t) => `"${t.name}"`), ...ENGINE_TABLES];
  await sql.query(`TRUNCATE ${tables.join(', ')}`);
}

/**
 * `sql`, with what `wrap` gives in place of each session's `query` or
 * `script`: the tests' way in between the statements of one request (to
 * hold it, rewrite it, or commit something from elsewhere meanwhile).
 */
export function wrapSessions(sql: Sql, wrap: (s: SqlSession) => Partial<Pick<SqlSession, 'query' | 'script'>>): Sql {
  return {
    kind: sql.kind,
    query: (text, params) => sql.query(text, params),
    transaction: (fn, options) => sql.transaction(fn, options),
    listen: (channel, onNotify) => sql.listen(channel, onNotify),
    close: () => sql.close(),
    session: (fn) => sql.session((s) => fn({ prepared: s.prepared, query: (text, params) => s.query(text, params), script: (text) => s.script(text), ...wrap(s) })),
  };
}
