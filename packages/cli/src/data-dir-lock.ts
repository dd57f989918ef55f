import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { CliError } from './errors.js';

const LOCK_FILE = 'dovetail.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Embedded Postgres (PGlite) has no server process to arbitrate: two
 * processes opening one data directory would both write it and corrupt it.
 * So every dovetail process takes this lock first (a file created
 * exclusively, holding its pid) and releases it when it closes; a lock left
 * by a process that died is taken over.
 */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new CliError('cannot_run', `the embedded Postgres in ${dir} is in use by process ${holder} (a dovetail server?)`, 'stop that process first (one process at a time may open an embedded data directory), or use a Postgres server with --database-url');
      }
      rmSync(path, { force: true }); // left by a process that is gone
    }
  }
  throw new CliError('cannot_run', `could not take the lock ${path}`, 'check that the directory is writable');
}

/** Embedded Postgres in `dir`, under its lock: closing it releases the lock (so does a failure to open). */
export async function openEmbedded(dir: string): Promise<Sql> {
  const unlock = lockDataDir(dir);
  try {
    const sql = await embeddedSql(dir);
    const close = sql.close.bind(sql);
    return Object.assign(sql, { close: () => close().finally(unlock) });
  } catch (error) {
    unlock();
    throw error;
  }
}
