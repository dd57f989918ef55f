/**
 * The sync world the sync benchmarks run in: a real `SyncServer` behind a
 * real HTTP server on loopback, over embedded PGlite by default or over the
 * Postgres in `DATABASE_URL` (in a private schema, dropped afterwards), and
 * devices with real SQLite files that sync through `httpTransport`.
 *
 * It also builds the limits' raw side: a copy of the app's tables in a
 * second private Postgres schema, with the same DDL and no capture
 * triggers, and raw SQLite files with the engine's pragmas and DDL.
 *
 * Every transport can be instrumented (`TransportProbe`), so a benchmark can
 * tell requests in flight and when each phase of a sync happened.
 */
import Sqlite from 'better-sqlite3';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, httpTransport, TransportError } from '@dovetail/client';
import type { Database, DovetailClient, SyncOptions, SyncReport, SyncTransport, Timers, WebSocketLike } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { defineSchema, integer, quoteIdent as q, table, text } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import { createAuthenticator, embeddedSql, postgresSql, silentLogger, startHttpServer, SyncServer } from '@dovetail/server';
import type { RunningServer, Sql } from '@dovetail/server';

// ------------------------------------------------------------------ schema

/** Four key levels: users -> projects -> tasks (with a self-reference) -> comments. */
export const syncSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({ columns: { id: text().primaryKey(), name: text().default('') }, owner: 'id', visibility: 'public' }),
    projects: table({
      columns: { id: text().primaryKey(), owner_id: text().references('users', { onDelete: 'restrict' }), title: text() },
      owner: 'owner_id',
      visibility: 'owner',
    }),
    tasks: table({
      columns: {
        id: text().primaryKey(),
        project_id: text().references('projects', { onDelete: 'cascade' }),
        parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }),
        title: text(),
        rank: integer().default(0),
      },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
    comments: table({
      columns: {
        id: text().primaryKey(),
        task_id: text().references('tasks', { onDelete: 'cascade' }),
        author_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
        created_at: integer().default(0),
      },
      owner: 'author_id',
      visibility: { through: 'task_id' },
    }),
  },
});
export type SyncSchema = typeof syncSchema;

// ------------------------------------------------------------------ tokens

const SECRET = 'bench-secret-long-enough-for-hs256-signing';

export async function tokenFor(sub: string): Promise<string> {
  return new SignJWT({ role: 'authenticated', name: sub }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('2h').sign(new TextEncoder().encode(SECRET));
}

/** Timers that never fire: the benchmark calls `syncNow()` itself. */
export const manualTimers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined };


// --------------------------------------------------------------- transport

/** What an instrumented transport reports, with `performance.now()` times. */
export interface TransportProbe {
  /** Requests (push or pull) in flight on every probed transport. */
  inFlight: number;
  onPushStart?: (device: string, at: number) => void;
  onPushEnd?: (device: string, at: number) => void;
  onPullStart?: (device: string, at: number) => void;
  onPullEnd?: (device: string, at: number, changes: number) => void;
  onPoke?: (device: string, at: number) => void;
}

export function newProbe(): TransportProbe {
  return { inFlight: 0 };
}

function probed(inner: SyncTransport, device: string, probe: TransportProbe): SyncTransport {
  const pokes = inner.pokes?.bind(inner);
  return {
    async push(request, token, signal) {
      probe.inFlight++;
      probe.onPushStart?.(device, performance.now());
      try {
        return await inner.push(request, token, signal);
      } finally {
        probe.inFlight--;
        probe.onPushEnd?.(device, performance.now());
      }
    },
    async pull(request, token, signal) {
      probe.inFlight++;
      probe.onPullStart?.(device, performance.now());
      let changes = 0;
      try {
        const response = await inner.pull(request, token, signal);
        changes = response.changes.length;
        return response;
      } finally {
        probe.inFlight--;
        probe.onPullEnd?.(device, performance.now(), changes);
      }
    },
    ...(pokes
      ? {
          pokes: (token, clientId, handlers) =>
            pokes(token, clientId, {
              onOpen: () => handlers.onOpen(),
              onPoke: () => {
                probe.onPoke?.(device, performance.now());
                handlers.onPoke();
              },
            }),
        }
      : {}),
  };
}

// ------------------------------------------------------------------- world

export interface DeviceOptions {
  /** Open the poke WebSocket. Default false. */
  readonly pokes?: boolean;
  /** Default: manual (nothing syncs unless the benchmark calls `syncNow()`). */
  readonly timers?: Timers;
  readonly probe?: TransportProbe;
  readonly sync?: Partial<SyncOptions>;
}

export interface BenchDevice {
  readonly name: string;
  readonly user: string;
  readonly client: DovetailClient<SyncSchema>;
  readonly db: Database<SyncSchema>;
  close(): Promise<void>;
}

export interface BenchWorld {
  readonly kind: 'embedded' | 'postgres';
  /** Which database the server runs on, for the output. */
  readonly description: string;
  readonly sql: Sql;
  readonly sync: SyncServer;
  readonly server: RunningServer;
  /** The private schema holding the limits' raw tables (same DDL, no triggers). */
  readonly rawSchema: string;
  /** Binds `user` on a new device (its own directory). */
  device(name: string, user: string, options?: DeviceOptions): Promise<BenchDevice>;
  /** A plain `pg` connection to the server's database (real Postgres only), for limits that need their own connections. */
  connect(): Promise<pg.Client>;
  close(): Promise<void>;
}

let worlds = 0;

/** Failed requests, with the cause the transport's error message leaves out (e.g. a socket closed under a request). */
export const networkFailures: string[] = [];

const loggingFetch: typeof fetch = async (input, init) => {
  try {
    return await fetch(input, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    networkFailures.push(`${url}: ${error instanceof Error ? error.message : String(error)}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`);
    throw error;
  }
};

/**
 * A server over PGlite (in memory) or over DATABASE_URL (a private schema
 * `bench_<pid>_<n>` and its raw twin `<that>_raw`, both dropped by `close`).
 * `poolMax` is the server's pool size on real Postgres.
 */
export async function createBenchWorld(directory: string, options: { poolMax?: number; /** Wraps the server's `Sql` (e.g. to time its queries while diagnosing). */ wrapSql?: (sql: Sql) => Sql } = {}): Promise<BenchWorld> {
  const url = process.env['DATABASE_URL'];
  let sql: Sql;
  let rawSchema: string;
  let dropSchemas: (() => Promise<void>) | undefined;
  let description: string;
  if (url) {
    const name = `bench_${process.pid}_${++worlds}`;
    rawSchema = `${name}_raw`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${name}`);
    await admin.query(`CREATE SCHEMA ${rawSchema}`);
    dropSchemas = async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      await admin.query(`DROP SCHEMA IF EXISTS ${rawSchema} CASCADE`);
      await admin.end();
    };
    try {
      sql = await postgresSql(url, { searchPath: name, max: options.poolMax ?? 20 });
    } catch (error) {
      await dropSchemas();
      throw error;
    }
    const version = (await sql.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v'))[0]?.v ?? '?';
    description = `Postgres ${version} (DATABASE_URL, private schemas ${name} and ${rawSchema}, server pool of ${options.poolMax ?? 20})`;
  } else {
    rawSchema = 'bench_raw';
    sql = await embeddedSql();
    await sql.query(`CREATE SCHEMA ${rawSchema}`);
    const version = (await sql.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v'))[0]?.v ?? '?';
    description = `PGlite, embedded Postgres ${version} in memory (one connection; set DATABASE_URL for a real Postgres)`;
  }

  const sync = new SyncServer({ schema: syncSchema, sql: options.wrapSql ? options.wrapSql(sql) : sql, authenticate: createAuthenticator({ secret: SECRET }), log: silentLogger });
  let server: RunningServer;
  try {
    await sync.setup();
    // The limits' tables: the very same DDL, in the raw schema, without the engine's capture triggers.
    await sql.transaction(async (tx) => {
      await tx.query(`SET LOCAL search_path TO ${rawSchema}`);
      for (const ddl of syncSchema.postgresDdl()) await tx.query(ddl);
    });
    server = await startHttpServer(sync, { rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } });
  } catch (error) {
    await sql.close().catch(() => undefined);
    await dropSchemas?.().catch(() => undefined);
    throw error;
  }

  const devices = new Set<BenchDevice>();
  const tokens = new Map<string, Promise<string>>();
  const token = (user: string): Promise<string> => {
    let t = tokens.get(user);
    if (!t) tokens.set(user, (t = tokenFor(user)));
    return t;
  };

  return {
    kind: url ? 'postgres' : 'embedded',
    description,
    sql,
    sync,
    server,
    rawSchema,
    async device(name, user, deviceOptions = {}) {
      const client = createClient({ schema: syncSchema, driver: nodeDriver({ directory: join(directory, name) }) });
      const http = httpTransport({
        url: server.url,
        fetch: loggingFetch,
        ...(deviceOptions.pokes ? { webSocket: WebSocket as unknown as new (u: string) => WebSocketLike } : {}),
        reconnectMs: 50,
      });
      const transport = deviceOptions.probe ? probed(http, name, deviceOptions.probe) : http;
      const db = await client.bind({
        userId: user,
        sync: { transport, getToken: () => token(user), refreshToken: () => tokenFor(user), timers: deviceOptions.timers ?? manualTimers, ...deviceOptions.sync },
      });
      const device: BenchDevice = {
        name,
        user,
        client,
        db,
        async close() {
          devices.delete(device);
          await client.signOut().catch(() => undefined);
        },
      };
      devices.add(device);
      return device;
    },
    async connect() {
      if (!url) throw new Error('connect() needs DATABASE_URL');
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async close() {
      await Promise.all([...devices].map((d) => d.close()));
      await server.close();
      await sql.close();
      await dropSchemas?.();
    },
  };
}

// --------------------------------------------------------------- raw sides

/** `INSERT INTO "t" (every column) VALUES (...)` for better-sqlite3, and how to take a row's values in that order. */
export function sqliteInsert(t: TableModel): { sql: string; values: (row: Record<string, unknown>) => unknown[] } {
  const cols = t.columns.map((c) => c.name);
  return {
    sql: `INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
    values: (row) => cols.map((c) => row[c] ?? null),
  };
}

/** A raw SQLite file with the engine's pragmas and the schema's own DDL, nothing of the engine on top. */
export function openRawSqlite(directory: string, schema: Schema = syncSchema): Sqlite.Database {
  const sqlite = new Sqlite(join(directory, 'raw.sqlite'));
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  if (sqlite.pragma('foreign_keys', { simple: true }) !== 1) throw new Error('raw database: foreign keys did not turn on');
  if (sqlite.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error('raw database: WAL did not turn on');
  sqlite.exec('BEGIN IMMEDIATE');
  for (const ddl of schema.sqliteDdl()) sqlite.exec(ddl);
  sqlite.exec('COMMIT');
  return sqlite;
}

/** The DDL SQLite stores for the synced tables (to prove both sides use the same). */
export function sqliteDdlOf(rows: readonly { sql: string | null }[]): string {
  return rows.map((r) => r.sql ?? '').join('\n');
}
export const DDL_QUERY = `SELECT sql FROM sqlite_schema WHERE tbl_name IN (${syncSchema.syncedTables.map((t) => `'${t.name}'`).join(', ')}) AND sql IS NOT NULL ORDER BY tbl_name, name`;

/**
 * `syncNow()`, retried at once (at most 3 times) when a request failed on
 * the network, as the runner would after its backoff when its timers are
 * real. The usual cause here is a kept-alive connection that the server
 * closed while it sat idle (ECONNRESET); each retry is logged with it.
 */
export async function syncRetrying(device: BenchDevice, log: (message: string) => void): Promise<SyncReport> {
  for (let failures = 0; ; failures++) {
    try {
      return await device.db.sync.syncNow();
    } catch (error) {
      if (!(error instanceof TransportError) || error.code !== 'network' || failures >= 3) throw error;
      log(`${device.name}: a sync request failed (${networkFailures.at(-1) ?? error.message}); retrying at once`);
    }
  }
}

/** Resolves when `check` passes, polling every `everyMs`; throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000, everyMs = 5): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
