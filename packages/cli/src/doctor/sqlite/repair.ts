import { dirname } from 'node:path';
import { quoteIdent as q } from '@dovetail/schema';
import { backupFileName } from '../backup-name.js';
import { DoctorError, messageOf } from '../errors.js';
import { orphanText, reportValue } from '../format.js';
import { ROW_ACTIONS } from '../plan-rows.js';
import type { RepairOptions, RepairPlan, RepairResult, RepairStepResult } from '../types.js';
import { openSqlite } from './connection.js';
import type { SqliteHandle } from './connection.js';
import { diagnoseSqlite } from './diagnose.js';

interface Broken {
  table: string;
  rowid: number | null;
  parent: string;
  fkid: number;
}

/**
 * Every broken key `PRAGMA foreign_key_check` reports, table by table (a
 * table whose key names a missing table cannot be checked and is skipped:
 * that is drift the diagnosis reports).
 */
function brokenKeys(db: SqliteHandle): Map<string, Broken> {
  const out = new Map<string, Broken>();
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
  for (const { name } of tables) {
    let rows: Broken[];
    try {
      rows = db.prepare(`PRAGMA foreign_key_check(${q(name)})`).all() as Broken[];
    } catch {
      continue;
    }
    for (const r of rows) out.set(`${r.table}\u0000${String(r.rowid)}\u0000${r.fkid}`, r);
  }
  return out;
}

/** A broken key named the way the engine names them. */
function describe(db: SqliteHandle, r: Broken): string {
  const keys = db.prepare('SELECT "from", "to" FROM pragma_foreign_key_list(?) WHERE id = ? ORDER BY seq').all(r.table, r.fkid) as { from: string; to: string | null }[];
  const cols = keys.map((k) => k.from);
  const values = r.rowid === null ? [] : ((db.prepare(`SELECT ${cols.map(q).join(', ')} FROM ${q(r.table)} WHERE rowid = ?`).raw().get(r.rowid) as unknown[] | undefined) ?? []);
  return orphanText({ name: '', table: r.table, columns: cols, refTable: r.parent, refColumns: keys.map((k) => k.to ?? 'id') }, values.map(reportValue));
}

/**
 * Applies a SQLite plan: a full copy of the file first (better-sqlite3's
 * online backup, next to the file), then every step in one IMMEDIATE
 * transaction with foreign keys on and deferred to COMMIT, and
 * `foreign_key_check` before COMMIT: a key the steps broke (and did not
 * mend) rolls everything back, like any failing step.
 */
export async function repairSqlite(path: string, plan: RepairPlan, options: RepairOptions): Promise<RepairResult> {
  const now = options.now?.() ?? Date.now();
  const { db, foreignKeys } = openSqlite(path, { readonly: false });
  const results: RepairStepResult[] = [];
  let failed: RepairResult['failed'];
  let backup: string;
  try {
    if (!foreignKeys) throw new DoctorError('cannot_open', `cannot turn foreign keys on for ${path}; the doctor does not repair with keys off`, 'use a SQLite build with foreign key support');
    backup = backupFileName(dirname(path), path, now);
    options.onProgress?.({ phase: 'backup', path: backup });
    try {
      await db.backup(backup);
    } catch (error) {
      throw new DoctorError('cannot_open', `could not write the backup ${backup}: ${messageOf(error)}; nothing was changed`, 'check the directory of the file is writable and has room for a copy');
    }
    db.exec('BEGIN IMMEDIATE');
    try {
      db.pragma('defer_foreign_keys = ON');
      const before = brokenKeys(db);
      for (const step of plan.steps) {
        options.onProgress?.({ phase: 'repair', step: step.number, steps: plan.steps.length, description: step.description });
        try {
          const r = db.prepare(step.sql).run(...step.params);
          results.push({ number: step.number, action: step.action, description: step.description, rows: ROW_ACTIONS.has(step.action) ? r.changes : 0 });
        } catch (error) {
          failed = { step: step.number, description: step.description, error: messageOf(error) };
          throw error;
        }
      }
      // The repair may leave what it cannot repair, never break a key itself.
      const added = [...brokenKeys(db)].filter(([k]) => !before.has(k)).map(([, r]) => r);
      if (added.length > 0) {
        const named = added.slice(0, 5).map((r) => describe(db, r));
        failed = { step: plan.steps.length + 1, description: 'check every key before COMMIT (PRAGMA foreign_key_check)', error: `the plan would break keys: ${named.join('; ')}${added.length > 5 ? ` and ${added.length - 5} more` : ''}` };
        throw new Error(failed.error);
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      failed ??= { step: plan.steps.length + 1, description: 'COMMIT', error: messageOf(error) };
    }
  } finally {
    db.close();
  }
  const after = await diagnoseSqlite(path, options);
  return { plan, applied: failed === undefined, backup, steps: failed ? [] : results, ...(failed ? { failed } : {}), after };
}
