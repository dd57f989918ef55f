/**
 * The database both sides of a write benchmark use: a parent table
 * (`projects`) and a child table (`tasks`) with a foreign key to it, under the
 * identity table (`users`) every schema needs.
 *
 * `openEngine` opens it the way an app does (client, driver, bind).
 * `openRaw` builds the limit: a better-sqlite3 file database with the same
 * pragmas the engine sets at boot and the very same DDL (generated from the
 * same schema), with nothing of the engine on top.
 */
import Sqlite from 'better-sqlite3';
import { join } from 'node:path';
import { createClient } from '@dovetail/client';
import type { Database } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { defineSchema, integer, table, text } from '@dovetail/schema';

export const benchSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({
      columns: { id: text().primaryKey(), name: text().default('') },
      owner: 'id',
      visibility: 'public',
    }),
    projects: table({
      columns: {
        id: text().primaryKey(),
        owner_id: text().references('users', { onDelete: 'restrict' }),
        title: text(),
      },
      owner: 'owner_id',
      visibility: 'owner',
    }),
    tasks: table({
      columns: {
        id: text().primaryKey(),
        project_id: text().references('projects', { onDelete: 'cascade' }),
        title: text(),
        rank: integer().default(0),
      },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
  },
});
export type BenchSchema = typeof benchSchema;

export const USER_ID = 'bench-user';
export const PROJECT_ID = 'bench-project';

/** One row of the child table. Both sides write exactly these columns. */
export type TaskRow = {
  id: string;
  project_id: string;
  title: string;
  rank: number;
};

export function taskRow(id: string, rank: number): TaskRow {
  return { id, project_id: PROJECT_ID, title: `benchmark task ${rank}`, rank };
}

/** The same column list the engine's compiled INSERT uses for a `TaskRow`. */
export const INSERT_TASK_SQL = 'INSERT INTO "tasks" ("id", "project_id", "title", "rank") VALUES (?, ?, ?, ?)';

export interface EngineSide {
  readonly db: Database<BenchSchema>;
  close(): Promise<void>;
}

/** A bound client on a fresh file in `directory`, with the parent row written. */
export async function openEngine(directory: string): Promise<EngineSide> {
  const client = createClient({ schema: benchSchema, driver: nodeDriver({ directory }) });
  const db = await client.bind({ userId: USER_ID });
  await db.mutate('seedProject', (m) => m.insert('projects', { id: PROJECT_ID, owner_id: USER_ID, title: 'benchmark project' }));
  return { db, close: () => client.signOut({ wipe: true }) };
}

export interface RawSide {
  readonly sqlite: Sqlite.Database;
  close(): void;
}

/** A better-sqlite3 file database with the engine's pragmas and DDL, and the parent row written. */
export function openRaw(directory: string): RawSide {
  const sqlite = new Sqlite(join(directory, 'raw.sqlite'));
  // The pragmas the engine sets when it boots a database.
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  if (sqlite.pragma('foreign_keys', { simple: true }) !== 1) throw new Error('raw database: foreign keys did not turn on');
  if (sqlite.pragma('journal_mode', { simple: true }) !== 'wal') throw new Error('raw database: WAL did not turn on');
  sqlite.exec('BEGIN IMMEDIATE');
  for (const sql of benchSchema.sqliteDdl()) sqlite.exec(sql);
  sqlite.prepare('INSERT INTO "users" ("id") VALUES (?)').run(USER_ID);
  sqlite.prepare('INSERT INTO "projects" ("id", "owner_id", "title") VALUES (?, ?, ?)').run(PROJECT_ID, USER_ID, 'benchmark project');
  sqlite.exec('COMMIT');
  return { sqlite, close: () => sqlite.close() };
}

/**
 * Proves the comparison is like for like: the child table has the same DDL
 * on both sides, and every row each side was asked to write is there.
 */
export async function checkSides(engine: EngineSide, raw: RawSide, expectedTasks: number): Promise<void> {
  const ddlSql = 'SELECT sql FROM sqlite_schema WHERE tbl_name = ? ORDER BY name';
  const engineDdl = (await engine.db.query<{ sql: string }>(ddlSql, ['tasks'])).map((r) => r.sql);
  const rawDdl = (raw.sqlite.prepare(ddlSql).all('tasks') as { sql: string }[]).map((r) => r.sql);
  if (JSON.stringify(engineDdl) !== JSON.stringify(rawDdl)) {
    throw new Error(`the tasks table differs between the engine and the raw database:\n${engineDdl.join('\n')}\n---\n${rawDdl.join('\n')}`);
  }
  const countSql = 'SELECT count(*) AS n FROM "tasks"';
  const engineCount = (await engine.db.query<{ n: number }>(countSql))[0]?.n;
  const rawCount = (raw.sqlite.prepare(countSql).get() as { n: number }).n;
  if (engineCount !== expectedTasks || rawCount !== expectedTasks) {
    throw new Error(`expected ${expectedTasks} tasks on each side, found ${String(engineCount)} (engine) and ${rawCount} (raw)`);
  }
  const broken = raw.sqlite.pragma('foreign_key_check') as unknown[];
  const engineBroken = await engine.db.foreignKeyCheck();
  if (broken.length > 0 || engineBroken.length > 0) throw new Error('a benchmark left broken foreign keys');
}
