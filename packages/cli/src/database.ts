import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { embeddedSql, postgresSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { lockDataDir } from './data-dir-lock.js';
import { CliError } from './errors.js';
import type { OptionValues } from './options.js';
import { stringOption } from './options.js';

export interface OpenDatabase {
  /** Closing it also releases the embedded data directory's lock. */
  readonly sql: Sql;
  /** For messages: `Postgres at host:port/db` or `embedded Postgres in dir/`. */
  readonly description: string;
}

/** The database named by --database-url, else embedded Postgres in --data-dir. */
export async function openDatabase(values: OptionValues, cwd: string): Promise<OpenDatabase> {
  const url = stringOption(values, 'database-url');
  if (url) {
    let where: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('not postgres');
      where = `${u.host}${u.pathname}`;
    } catch {
      throw new CliError('usage', `--database-url is not a Postgres URL: ${redact(url)}`, 'write it as postgres://user:password@host:5432/database');
    }
    try {
      const sql = await postgresSql(url);
      await sql.query('SELECT 1');
      return { sql, description: `Postgres at ${where}` };
    } catch (error) {
      throw new CliError('cannot_run', `cannot reach Postgres at ${where}: ${error instanceof Error ? error.message : String(error)}`, 'check that the server runs and the URL, user and password are right');
    }
  }
  const dir = resolve(cwd, stringOption(values, 'data-dir') ?? '.dovetail-data');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new CliError('cannot_run', `cannot create ${dir}: ${error instanceof Error ? error.message : String(error)}`, 'check the path given to --data-dir, or pass --database-url');
  }
  const unlock = lockDataDir(dir);
  try {
    const sql = await embeddedSql(dir);
    const close = sql.close.bind(sql);
    return { sql: Object.assign(sql, { close: () => close().finally(unlock) }), description: `embedded Postgres in ${dir}` };
  } catch (error) {
    unlock();
    throw new CliError('cannot_run', `cannot open embedded Postgres in ${dir}: ${error instanceof Error ? error.message : String(error)}`, 'check the directory is writable, or pass --database-url');
  }
}

/** A URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
