import { readFileSync } from 'node:fs';
import { createAuthenticator, embeddedSql, postgresSql, SyncServer } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import type { Schema } from '@dovetail/schema';

/** One test's Postgres: its own schema (the app's tables) and its own auth schema (Supabase-style `users`). */
export interface PgWorld {
  readonly sql: Sql;
  readonly schemaName: string;
  readonly authSchema: string;
  close(): Promise<void>;
}

export interface PgServer {
  fresh(): Promise<PgWorld>;
  close(): Promise<void>;
}

let counter = 0;

/**
 * Real Postgres when DATABASE_URL is set, else one embedded PGlite in
 * memory for the whole file. Either way each test gets fresh schemas,
 * dropped when it closes, so tests never see each other's tables.
 */
export async function openPgServer(): Promise<PgServer> {
  const url = process.env['DATABASE_URL'];
  if (!url) {
    const sql = await embeddedSql();
    return {
      async fresh() {
        const schemaName = `doctor_${++counter}`;
        const authSchema = `${schemaName}_auth`;
        await sql.query(`CREATE SCHEMA ${schemaName}`);
        await sql.query(`CREATE SCHEMA ${authSchema}`);
        await sql.query(`SET search_path TO ${schemaName}`);
        return {
          sql,
          schemaName,
          authSchema,
          async close() {
            await sql.query('SET search_path TO public');
            await sql.query(`DROP SCHEMA ${schemaName}, ${authSchema} CASCADE`);
          },
        };
      },
      close: () => sql.close(),
    };
  }
  const admin = await postgresSql(url, { max: 1 });
  return {
    async fresh() {
      const schemaName = `doctor_${process.pid}_${Date.now()}_${++counter}`;
      const authSchema = `${schemaName}_auth`;
      await admin.query(`CREATE SCHEMA ${schemaName}`);
      await admin.query(`CREATE SCHEMA ${authSchema}`);
      const sql = await postgresSql(url, { searchPath: schemaName, max: 3 });
      return {
        sql,
        schemaName,
        authSchema,
        async close() {
          await sql.close();
          await admin.query(`DROP SCHEMA ${schemaName}, ${authSchema} CASCADE`);
        },
      };
    },
    close: () => admin.close(),
  };
}

/**
 * The app's tables as the schema declares them, minus the keys named in
 * `withoutKeys` (never created), then the sync server's setup: engine
 * tables and capture triggers.
 */
export async function createTables(world: PgWorld, schema: Schema, options: { withoutKeys?: readonly string[] } = {}): Promise<void> {
  const skip = new Set(options.withoutKeys ?? []);
  for (const ddl of schema.postgresDdl()) {
    const key = /ADD CONSTRAINT "([^"]+)"/.exec(ddl)?.[1];
    if (key === undefined || !skip.has(key)) await world.sql.query(ddl);
  }
  await new SyncServer({ schema, sql: world.sql, authenticate: createAuthenticator({ secret: 'doctor-test-secret-long-enough-for-hs256' }) }).setup();
}

/** Runs a backup script the way psql would, statement by statement, in its own transaction. */
export async function runScript(sql: Sql, path: string): Promise<void> {
  const statements = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('--') && l !== 'BEGIN;' && l !== 'COMMIT;');
  await sql.transaction(async (tx) => {
    for (const s of statements) await tx.query(s.replace(/;$/, ''));
  });
}
