import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { DoctorError, messageOf } from '../errors.js';
import type { DoctorDb } from '../orphans.js';

export type SqliteHandle = Database.Database;

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/**
 * Opens the file, proves it is a SQLite database (the first read fails on
 * anything else) and turns foreign keys on for this connection, outside any
 * transaction, as the engine does. Diagnosis opens read-only; a repair
 * opens for writing.
 */
export function openSqlite(path: string, options: { readonly: boolean }): { db: SqliteHandle; foreignKeys: boolean } {
  if (!existsSync(path)) throw new DoctorError('no_such_file', `no such file: ${path}`, 'give the path of an existing SQLite file, or a postgres:// URL');
  let db: SqliteHandle;
  try {
    db = new Database(path, { readonly: options.readonly, fileMustExist: true });
  } catch (error) {
    throw new DoctorError('cannot_open', `cannot open ${path}: ${messageOf(error)}`, 'check the file is readable (and writable for --fix)');
  }
  try {
    db.prepare('SELECT count(*) AS n FROM sqlite_master').get();
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    const on = db.pragma('foreign_keys', { simple: true }) === 1;
    return { db, foreignKeys: on };
  } catch (error) {
    db.close();
    if (codeOf(error) === 'SQLITE_NOTADB') throw new DoctorError('not_a_database', `${path} is not a SQLite database (${messageOf(error)})`, 'give the path of a SQLite database file, or a postgres:// URL');
    throw new DoctorError('cannot_open', `cannot read ${path}: ${messageOf(error)}`, 'check the file is a readable SQLite database and not locked by another program');
  }
}

/** The shared checks' view of a better-sqlite3 connection. */
export function sqliteDb(db: SqliteHandle): DoctorDb {
  return {
    dialect: 'sqlite',
    all: <R extends object>(sql: string, params: readonly unknown[] = []) => Promise.resolve(db.prepare(sql).all(...params) as R[]),
  };
}
