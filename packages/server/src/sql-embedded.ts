import { PGlite } from '@electric-sql/pglite';
import { PreparedNames } from './prepared-names.js';
import { beginSql } from './sql.js';
import type { Sql, SqlQueryable, SqlSession } from './sql.js';

/**
 * Embedded Postgres (PGlite) in a data directory on disk, or in memory when
 * no directory is given. One connection: transactions run one at a time.
 *
 * @example
 * const sql = await embeddedSql('./.dovetail-data');
 */
export async function embeddedSql(dataDir?: string): Promise<Sql> {
  const db = dataDir ? await PGlite.create({ dataDir }) : await PGlite.create();
  const queryable: SqlQueryable = {
    query: async <R extends object>(text: string, params?: readonly unknown[]) => (await db.query<R>(text, params as unknown[] | undefined)).rows,
  };
  const session: SqlSession = {
    ...queryable,
    prepared: new PreparedNames(),
    script: async (text) => (await db.exec(text)).map((r) => r.rows as Record<string, unknown>[]),
  };
  // PGlite has one connection; queue transactions so they never interleave.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const result = tail.then(fn, fn);
    tail = result.catch(() => undefined);
    return result;
  };
  return {
    kind: 'embedded',
    query: (text, params) => exclusive(() => queryable.query(text, params)),
    transaction: (fn, options = {}) =>
      exclusive(async () => {
        await db.query(beginSql(options));
        try {
          const result = await fn(queryable);
          await db.query('COMMIT');
          return result;
        } catch (error) {
          await db.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    session: (fn) =>
      exclusive(async () => {
        try {
          return await fn(session);
        } catch (error) {
          await db.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    async listen(channel, onNotify) {
      const unsubscribe = await db.listen(channel, onNotify);
      return () => unsubscribe();
    },
    close: () => db.close(),
  };
}
