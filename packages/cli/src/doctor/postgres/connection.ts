import { postgresSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { openEmbedded } from '../../data-dir-lock.js';
import { CliError } from '../../errors.js';
import { isPostgresUrl, redactUrl } from '../../postgres-url.js';
import { DoctorError, messageOf } from '../errors.js';
import type { DoctorDb } from '../orphans.js';
import type { DoctorTarget } from '../types.js';

/** How long to wait for a server before calling it unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface OpenPostgres {
  readonly sql: Sql;
  /** Closes what the doctor opened; a connection it was given stays open. */
  close(): Promise<void>;
}

export async function openPostgres(target: Extract<DoctorTarget, { kind: 'postgres' }>): Promise<OpenPostgres> {
  if ('sql' in target) return { sql: target.sql, close: () => Promise.resolve() };
  if ('dataDir' in target) {
    try {
      const sql = await openEmbedded(target.dataDir);
      return { sql, close: () => sql.close() };
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new DoctorError('cannot_open', `cannot open the embedded Postgres in ${target.dataDir}: ${messageOf(error)}`, 'stop the dovetail server that uses it first (one process at a time), or check the directory');
    }
  }
  const shown = redactUrl(target.url);
  if (!isPostgresUrl(target.url)) {
    throw new DoctorError('bad_url', `not a valid Postgres URL: ${shown}`, 'write it as postgres://user:password@host:5432/database');
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  });
  const opening = postgresSql(target.url, { max: 2 });
  try {
    const sql = await Promise.race([opening, timeout]);
    return { sql, close: () => sql.close() };
  } catch (error) {
    // A server that answers after the timeout gets its pool closed, so nothing keeps the process alive.
    opening.then((late) => late.close(), () => undefined).catch(() => undefined);
    throw new DoctorError('unreachable', `cannot reach Postgres at ${shown}: ${messageOf(error)}`, 'check that the server runs and that the URL, user and password are right');
  } finally {
    clearTimeout(timer);
  }
}

export function pgDb(sql: Sql): DoctorDb {
  return { dialect: 'postgres', all: <R extends object>(text: string, params?: readonly unknown[]) => sql.query<R>(text, params) };
}
