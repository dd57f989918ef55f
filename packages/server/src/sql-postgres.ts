import pg from 'pg';
import { PreparedNames } from './prepared-names.js';
import { beginSql } from './sql.js';
import type { Sql, SqlQueryable, SqlSession } from './sql.js';

/**
 * Any Postgres server (13 or later) by URL, through a `pg` pool.
 *
 * @example
 * const sql = await postgresSql(process.env.DATABASE_URL);
 */
export async function postgresSql(url: string, options: { max?: number; /** A plain schema name, e.g. for isolated tests. */ searchPath?: string } = {}): Promise<Sql> {
  if (options.searchPath !== undefined && !/^[a-z_][a-z0-9_]*$/.test(options.searchPath)) {
    throw new Error(`searchPath must be a plain lower-case schema name, got ${JSON.stringify(options.searchPath)}`);
  }
  const searchPath = options.searchPath;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(searchPath ? { options: `-c search_path=${searchPath}` } : {}),
  });
  // A pool reports errors of idle clients here; without a listener they crash the process.
  pool.on('error', () => undefined);
  const probe = await pool.connect();
  probe.release();
  // Prepared statements belong to a connection: one record per pooled client.
  const preparedBy = new WeakMap<pg.PoolClient, PreparedNames>();
  const wrap = (client: pg.PoolClient | pg.Pool): SqlQueryable => ({
    query: async <R extends object>(text: string, params?: readonly unknown[]) => (await client.query(text, params as unknown[] | undefined)).rows as R[],
  });
  return {
    kind: 'postgres',
    ...wrap(pool),
    async transaction(fn, options = {}) {
      const client = await pool.connect();
      try {
        await client.query(beginSql(options));
        try {
          const result = await fn(wrap(client));
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      } finally {
        client.release();
      }
    },
    async session(fn) {
      const client = await pool.connect();
      let prepared = preparedBy.get(client);
      if (!prepared) preparedBy.set(client, (prepared = new PreparedNames()));
      const session: SqlSession = {
        ...wrap(client),
        prepared,
        async script(text) {
          // Without parameters, pg uses the simple query protocol, which
          // takes several statements: one result for one, an array for more.
          const result = (await client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
          return (Array.isArray(result) ? result : [result]).map((r) => r.rows as Record<string, unknown>[]);
        },
      };
      try {
        return await fn(session);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onNotify) {
      const client = await pool.connect();
      const handler = (msg: pg.Notification): void => {
        if (msg.channel === channel) onNotify(msg.payload ?? '');
      };
      client.on('notification', handler);
      await client.query(`LISTEN "${channel.replaceAll('"', '""')}"`);
      return async () => {
        client.off('notification', handler);
        await client.query(`UNLISTEN "${channel.replaceAll('"', '""')}"`).catch(() => undefined);
        client.release();
      };
    },
    close: () => pool.end(),
  };
}
