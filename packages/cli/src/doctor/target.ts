import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isPostgresUrl, redactUrl } from '../postgres-url.js';
import { DoctorError } from './errors.js';
import type { DoctorTarget } from './types.js';

/**
 * The target named on the command line: a `postgres://` or `postgresql://`
 * URL, the data directory of an embedded Postgres (what `dovetail serve`
 * and `dev` use without a URL), or else the path of an existing file (a
 * SQLite database). Anything else is refused here, with the reason, before
 * anything is opened.
 */
export function parseTarget(argument: string, cwd: string = process.cwd()): DoctorTarget {
  const arg = argument.trim();
  if (arg === '') throw new DoctorError('wrong_target', 'no database given', 'give the path of a SQLite file or a postgres:// URL');
  if (/^postgres(?:ql)?:\/\//i.test(arg)) {
    if (!isPostgresUrl(arg)) {
      throw new DoctorError('bad_url', `not a valid Postgres URL: ${redactUrl(arg)}`, 'write it as postgres://user:password@host:5432/database');
    }
    return { kind: 'postgres', url: arg };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
    throw new DoctorError('wrong_target', `${redactUrl(arg)} is neither a file nor a Postgres URL`, 'give the path of a SQLite file or a postgres:// URL');
  }
  const path = resolve(cwd, arg);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new DoctorError('no_such_file', `no such file: ${path}`, 'give the path of an existing SQLite file, or a postgres:// URL');
  }
  if (!isFile && existsSync(join(path, 'PG_VERSION'))) return { kind: 'postgres', dataDir: path };
  if (!isFile) throw new DoctorError('wrong_target', `${path} is not a file`, 'give the path of a SQLite database file, an embedded Postgres data directory, or a postgres:// URL');
  return { kind: 'sqlite', path };
}

/** How a target is named in reports: a URL without its password. */
export function describeTarget(target: DoctorTarget): string {
  if (target.kind === 'sqlite') return target.path;
  if ('url' in target) return redactUrl(target.url);
  if ('dataDir' in target) return `embedded Postgres in ${target.dataDir}`;
  return target.sql.kind === 'embedded' ? 'embedded Postgres' : 'Postgres (open connection)';
}
