import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** The few calls the tests need from Postgres, whichever one runs. */
export interface TestPostgres {
  /** `pglite` (embedded) or `postgres` (the server named by DATABASE_URL). */
  readonly kind: 'pglite' | 'postgres';
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;

/**
 * Real Postgres when DATABASE_URL is set (each call gets its own schema,
 * dropped on close), embedded PGlite otherwise. Both run the same SQL.
 */
export async function openTestPostgres(): Promise<TestPostgres> {
  const url = process.env['DATABASE_URL'];
  if (!url) {
    const db = new PGlite();
    return {
      kind: 'pglite',
      query: async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
      exec: async (sql) => void (await db.exec(sql)),
      close: () => db.close(),
    };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const schema = `dovetail_test_${process.pid}_${Date.now()}_${++counter}`;
  await client.query(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}"`);
  return {
    kind: 'postgres',
    query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[],
    exec: async (sql) => void (await client.query(sql)),
    close: async () => {
      await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      await client.end();
    },
  };
}
