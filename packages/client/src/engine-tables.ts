import type { SqliteConnection } from './driver.js';

/**
 * The engine's own tables.
 *
 * The outbox is written on every mutate(), so it carries no secondary index
 * and no AUTOINCREMENT (each would add a page write per commit): `seq` is
 * the rowid, always above every remaining entry, and mutation ids are
 * random UUIDs, looked up rarely in a short table.
 * They are created with `IF NOT EXISTS` and never
 * touched by app migrations, so the outbox survives every schema upgrade.
 * Their own layout is versioned by `ENGINE_VERSION`.
 */
export const ENGINE_VERSION = 1;

export const META = '_dovetail_meta';
export const OUTBOX = '_dovetail_outbox';
export const REJECTED = '_dovetail_rejected';

const DDL = `
CREATE TABLE IF NOT EXISTS ${META} (
  key TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS ${OUTBOX} (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  ops TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  sent INTEGER NOT NULL DEFAULT 0,
  merged_from TEXT NOT NULL DEFAULT '[]',
  result TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS ${REJECTED} (
  seq INTEGER PRIMARY KEY,
  outbox_seq INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  ops TEXT NOT NULL,
  reason TEXT NOT NULL,
  message TEXT NOT NULL,
  rows TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  rejected_at INTEGER NOT NULL,
  needs_refresh INTEGER NOT NULL DEFAULT 1
) STRICT;
`;

export const MetaKey = {
  EngineVersion: 'engine_version',
  Owner: 'owner',
  ClientId: 'client_id',
  /** The pull cursor (absent before the first sync). */
  Cursor: 'cursor',
  /** When the cursor was last written (ms since the epoch): how old the device's view of the server is. */
  LastPullAt: 'last_pull_at',
  /** Set when a pull could not be applied: the next pull starts over. */
  NeedsReset: 'needs_reset',
  SchemaVersion: 'schema_version',
  SchemaSnapshot: 'schema_snapshot',
  /** Set while a migration is under way: the version it is going to. */
  MigrationTarget: 'migration_target',
  CreatedAt: 'created_at',
} as const;
export type MetaKey = (typeof MetaKey)[keyof typeof MetaKey];

export async function createEngineTables(conn: SqliteConnection): Promise<void> {
  await conn.exec(`BEGIN IMMEDIATE; ${DDL} INSERT INTO ${META} (key, value) VALUES ('${MetaKey.EngineVersion}', '${ENGINE_VERSION}') ON CONFLICT (key) DO NOTHING; COMMIT;`);
}

export async function readMeta(conn: SqliteConnection, key: MetaKey): Promise<string | undefined> {
  const rows = await conn.all<{ value: string }>(`SELECT value FROM ${META} WHERE key = ?`, [key]);
  return rows[0]?.value;
}

export async function writeMeta(conn: SqliteConnection, key: MetaKey, value: string): Promise<void> {
  await conn.run(`INSERT INTO ${META} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, value]);
}
