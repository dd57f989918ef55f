import { quoteIdent as q, quoteLiteral } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import type { Sql, SqlQueryable } from './sql.js';

/**
 * The channel on which commits of synced rows are signalled (empty
 * payload): one per Postgres schema, so apps in different schemas of one
 * database do not poke each other's devices. A signal only says "read the
 * change log"; what changed, and who may see it, is read from
 * `_dovetail_changes` (see `change-feed.ts`).
 */
export function changesChannel(schemaName: string): string {
  return `dovetail_changes__${schemaName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/** The same name, computed in SQL from a schema name expression. */
function channelSql(schemaExpression: string): string {
  return `left('dovetail_changes__' || regexp_replace(lower(${schemaExpression}), '[^a-z0-9_]', '_', 'g'), 63)`;
}

/**
 * The setting under which writes do not signal row by row: the engine's
 * own pushes set it (`SET LOCAL`) and signal once after they commit (see
 * `push.ts` and `change-signal.ts`), because every transaction that notifies takes a
 * database-wide lock at commit, which would make concurrent pushes commit
 * one at a time. Writes from any other code signal as they commit.
 */
export const QUIET_SETTING = 'dovetail.quiet';

/**
 * The setting that names the device (client id) whose push writes in a
 * transaction: the capture trigger records it with each change, so the
 * poke service does not poke a device about changes only it made (it
 * pulls after its push anyway). Unset for writes from any other code.
 */
export const CLIENT_SETTING = 'dovetail.client';

/** The client id the capture trigger records: the setting, or NULL (a setting once set in a session reads '' afterwards). */
const WRITER_SQL = `NULLIF(current_setting('${CLIENT_SETTING}', true), '')`;

/** Signals the change channel of the connection's schema (the engine's writes, once committed). */
export const SIGNAL_CHANGES_SQL = `SELECT pg_notify(${channelSql('current_schema()')}, '')`;

/** The trigger's signal: once per transaction (identical notifications fold), unless the writer is quiet. */
const SIGNAL_SQL = `IF current_setting('${QUIET_SETTING}', true) IS DISTINCT FROM 'on' THEN
       PERFORM pg_notify(${channelSql('TG_TABLE_SCHEMA')}, '');
     END IF;`;

/**
 * The function a pipelined mutation's statements call with what must hold
 * for it to commit as the careful path would have committed it (see
 * pipeline.ts): true, or it fails with EXPECTATION_FAILED, the mutation's
 * transaction rolls back, and the careful path takes the mutation over.
 */
export const EXPECT_FUNCTION = '_dovetail_expect';

/** The SQLSTATE of EXPECT_FUNCTION's failure (a class of its own: Postgres uses none starting with D). */
const EXPECTATION_FAILED = 'DT001';

/** The schema the connection works in (where setup created the tables). */
export async function currentSchema(sql: SqlQueryable): Promise<string> {
  const rows = await sql.query<{ s: string }>('SELECT current_schema() AS s');
  return rows[0]?.s ?? 'public';
}

/**
 * The capture function (`name`) for tables whose primary key is
 * `primaryKey`: records one changed row (a key change as the old id gone
 * and the new one written, each with the old values); signals the commit
 * unless the writer is the engine's push (QUIET_SETTING), which signals
 * once for many commits. Postgres delivers identical notifications of a
 * transaction once. One definition for every key column, so the tables
 * keyed by `id` (which share `_dovetail_capture`) and the others cannot
 * drift apart.
 */
function captureFunctionSql(name: string, primaryKey: string): string {
  const key = (row: 'OLD' | 'NEW'): string => `${row}.${q(primaryKey)}::text`;
  return `CREATE OR REPLACE FUNCTION ${q(name)}() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'DELETE' THEN
       INSERT INTO _dovetail_changes (tbl, row_id, old_row, client_id) VALUES (TG_TABLE_NAME, ${key('OLD')}, to_jsonb(OLD), ${WRITER_SQL});
     ELSE
       IF TG_OP = 'UPDATE' AND ${key('OLD')} IS DISTINCT FROM ${key('NEW')} THEN
         INSERT INTO _dovetail_changes (tbl, row_id, old_row, client_id) VALUES (TG_TABLE_NAME, ${key('OLD')}, to_jsonb(OLD), ${WRITER_SQL});
       END IF;
       INSERT INTO _dovetail_changes (tbl, row_id, old_row, client_id) VALUES (TG_TABLE_NAME, ${key('NEW')}, CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END, ${WRITER_SQL});
     END IF;
     ${SIGNAL_SQL}
     RETURN NULL;
   END $$`;
}

/**
 * The engine's own tables on the server:
 * - `_dovetail_changes`: one entry per written row, by the capture triggers,
 *   with the writing transaction's id (`xid8`), so pulls follow commit
 *   order through snapshots, the old row of a delete (for visibility), and
 *   the device whose push wrote it (`CLIENT_SETTING`; null for other code);
 * - `_dovetail_ledger`: every processed mutation (client, id, result),
 *   written in the same transaction as its effects;
 * - `_dovetail_clients`: one row per device database (client id): the user
 *   it belongs to, and the last mutation of it the server processed. A
 *   push updates it first in each mutation's transaction, so the row lock
 *   keeps one client's mutations in order across requests and instances
 *   and numbers them (the ledger's `seq`), and a pull reads, in its
 *   snapshot, which mutation its state contains;
 * - `_dovetail_refused`: rows that refused mutations would have created, so
 *   a later mutation that needs one is refused with `parent_rejected`;
 * - `_dovetail_meta`: key/value settings (the pruning watermark).
 *
 * The capture trigger also signals the change channel (`pg_notify`, which
 * Postgres delivers at commit) to every listening server instance, unless
 * the writer is the engine's push, which signals after its commits.
 */
const ENGINE_DDL = [
  `CREATE TABLE IF NOT EXISTS _dovetail_meta (key text PRIMARY KEY, value text NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS _dovetail_changes (
     seq bigserial PRIMARY KEY,
     xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
     tbl text NOT NULL,
     row_id text NOT NULL,
     old_row jsonb,
     at timestamptz NOT NULL DEFAULT now()
   )`,
  // The writing device (added after the table's first version, so here for every database).
  `ALTER TABLE _dovetail_changes ADD COLUMN IF NOT EXISTS client_id text`,
  `CREATE INDEX IF NOT EXISTS _dovetail_changes_xid ON _dovetail_changes (xid)`,
  `CREATE INDEX IF NOT EXISTS _dovetail_changes_at ON _dovetail_changes (at)`,
  `CREATE INDEX IF NOT EXISTS _dovetail_changes_row ON _dovetail_changes (tbl, row_id, seq)`,
  `CREATE TABLE IF NOT EXISTS _dovetail_ledger (
     client_id text NOT NULL,
     mutation_id text NOT NULL,
     user_id text NOT NULL,
     seq bigint NOT NULL,
     digest text NOT NULL,
     result jsonb NOT NULL,
     xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
     at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (client_id, mutation_id)
   )`,
  `CREATE TABLE IF NOT EXISTS _dovetail_clients (
     client_id text PRIMARY KEY,
     user_id text NOT NULL,
     seq bigint NOT NULL DEFAULT 0,
     last_mutation text
   )`,
  // Earlier versions numbered a client's ledger rows by reading the ledger
  // (kept unique by an index) and found its last mutation there; both are
  // now the clients row, filled here from the ledger before the index goes.
  `DO $$ BEGIN
     IF to_regclass('_dovetail_ledger_order') IS NOT NULL THEN
       INSERT INTO _dovetail_clients (client_id, user_id, seq, last_mutation)
         SELECT DISTINCT ON (client_id) client_id, user_id, seq, mutation_id FROM _dovetail_ledger ORDER BY client_id, seq DESC
         ON CONFLICT (client_id) DO NOTHING;
       DROP INDEX _dovetail_ledger_order;
     END IF;
   END $$`,
  `CREATE TABLE IF NOT EXISTS _dovetail_refused (
     client_id text NOT NULL,
     tbl text NOT NULL,
     row_id text NOT NULL,
     PRIMARY KEY (client_id, tbl, row_id)
   )`,
  captureFunctionSql('_dovetail_capture', 'id'),
  `CREATE OR REPLACE FUNCTION ${EXPECT_FUNCTION}(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
   BEGIN
     IF ok IS NOT TRUE THEN
       RAISE EXCEPTION 'a pipelined mutation needs the careful path' USING ERRCODE = '${EXPECTATION_FAILED}';
     END IF;
     RETURN true;
   END $$`,
  // Older versions announced each row through this function.
  `DROP FUNCTION IF EXISTS _dovetail_announce(text, text, text, text)`,
];

/** The engine's tables, in the order the DDL creates them (read from it, so the two never drift apart). */
export const ENGINE_TABLES: readonly string[] = ENGINE_DDL.flatMap((ddl) => {
  const table = /^CREATE TABLE IF NOT EXISTS (\w+)/.exec(ddl)?.[1];
  return table ? [table] : [];
});

/**
 * The statements that create the engine tables and the shared capture
 * function; each is idempotent (`IF NOT EXISTS`, `OR REPLACE`). Exported
 * for `dovetail migrate`, which plans them as one step.
 */
export function engineDdl(): string[] {
  return [...ENGINE_DDL];
}

/** Capture triggers for one synced table. The primary key column is named by the schema. */
export function captureDdl(table: string, primaryKey: string): string[] {
  const fn = primaryKey === 'id' ? '_dovetail_capture' : `_dovetail_capture_${table}`;
  const ddl: string[] = [];
  if (primaryKey !== 'id') ddl.push(captureFunctionSql(fn, primaryKey));
  ddl.push(
    `DROP TRIGGER IF EXISTS _dovetail_capture ON ${q(table)}`,
    `CREATE TRIGGER _dovetail_capture AFTER INSERT OR UPDATE OR DELETE ON ${q(table)} FOR EACH ROW EXECUTE FUNCTION ${q(fn)}()`,
    // Announcements come from the row trigger, only when a row changed
    // (an earlier version had a separate statement trigger).
    `DROP TRIGGER IF EXISTS _dovetail_announce ON ${q(table)}`,
  );
  return ddl;
}

/**
 * The advisory lock key under which the schema changes: setup and every
 * migration step take it, so server instances sharing one database never
 * change its tables at the same time.
 */
export const SCHEMA_LOCK_KEY = 7474020501;

async function tableExists(db: SqlQueryable, table: string): Promise<boolean> {
  const rows = await db.query<{ t: string | null }>(`SELECT to_regclass(${quoteLiteral(table)})::text AS t`);
  return rows[0]?.t != null;
}

/**
 * Prepares a database for sync: the app's tables with their deferrable keys
 * (created only where missing: changing existing tables is `dovetail
 * migrate`'s job), the engine tables, and capture triggers on every synced
 * table, so rows written by any code path reach devices.
 */
export async function setupDatabase(sql: Sql, schema: Schema): Promise<void> {
  await sql.transaction(async (tx) => {
    // One setup at a time, across server instances sharing the database.
    await tx.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);
    for (const ddl of ENGINE_DDL) await tx.query(ddl);
    const missing: string[] = [];
    for (const t of schema.tables) if (!(await tableExists(tx, t.name))) missing.push(t.name);
    if (missing.length === schema.tables.length) {
      for (const ddl of schema.postgresDdl()) await tx.query(ddl);
    } else if (missing.length > 0) {
      const byName = new Set(missing);
      const all = schema.postgresDdl();
      // Partial: create only the missing tables, their keys and indexes.
      for (const ddl of all) {
        const target = /^(?:CREATE TABLE|ALTER TABLE|CREATE INDEX \S+ ON) "([a-z0-9_]+)"/.exec(ddl)?.[1];
        if (target && byName.has(target)) await tx.query(ddl);
      }
    }
    for (const t of schema.syncedTables) for (const ddl of captureDdl(t.name, t.primaryKey)) await tx.query(ddl);
  });
}
