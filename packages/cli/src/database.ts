import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { postgresSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { openEmbedded } from './data-dir-lock.js';
import { CliError } from './errors.js';
import type { OptionValues } from './options.js';
import { stringOption } from './options.js';
import { isPostgresUrl, redactUrl } from './postgres-url.js';

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
    if (!isPostgresUrl(url)) throw new CliError('usage', `--database-url is not a Postgres URL: ${redactUrl(url)}`, 'write it as postgres://user:password@host:5432/database');
    const u = new URL(url);
    const where = `${u.host}${u.pathname}`;
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
  try {
    return { sql: await openEmbedded(dir), description: `embedded Postgres in ${dir}` };
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError('cannot_run', `cannot open embedded Postgres in ${dir}: ${error instanceof Error ? error.message : String(error)}`, 'check the directory is writable, or pass --database-url');
  }
}
