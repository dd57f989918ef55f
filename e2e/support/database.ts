import pg from 'pg';
import { embeddedSql, postgresSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';

let counter = 0;

/**
 * The server database of an end-to-end test: real Postgres when
 * DATABASE_URL is set (a private schema, dropped by `close`), embedded
 * PGlite in memory otherwise.
 */
export async function openServerSql(prefix: string): Promise<{ sql: Sql; close: () => Promise<void> }> {
  const url = process.env['DATABASE_URL'];
  if (!url) {
    const sql = await embeddedSql();
    return { sql, close: () => sql.close() };
  }
  const name = `${prefix}_${process.pid}_${Date.now()}_${++counter}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${name}`);
  const sql = await postgresSql(url, { searchPath: name, max: 6 });
  return {
    sql,
    async close() {
      await sql.close();
      await admin.query(`DROP SCHEMA ${name} CASCADE`);
      await admin.end();
    },
  };
}
