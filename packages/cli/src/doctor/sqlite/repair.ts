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

/** The first broken keys `PRAGMA foreign_key_check` reports, named like the engine names them. */
function brokenKeys(db: SqliteHandle, limit: number): string[] {
  const rows = db.prepare('PRAGMA foreign_key_check').all() as { table: string; rowid: number | null; parent: string; fkid: number }[];
  return rows.slice(0, limit).map((r) => {
    const keys = db.prepare('SELECT id, "from", "to" FROM pragma_foreign_key_list(?) WHERE id = ? ORDER BY seq').all(r.table, r.fkid) as { from: string; to: string | null }[];
    const cols = keys.map((k) => k.from);
    const values = r.rowid === null ? [] : (db.prepare(`SELECT ${cols.map(q).join(', ')} FROM ${q(r.table)} WHERE rowid = ?`).raw().get(r.rowid) as unknown[] | undefined) ?? [];
    return orphanText({ name: '', table: r.table, columns: cols, refTable: r.parent, refColumns: keys.map((k) => k.to ?? 'id') }, values.map(reportValue));
  });
}

/**
 * Applies a SQLite plan: a full copy of the file first (better-sqlite3's
 * online backup, next to the file), then every step in one IMMEDIATE
 * transaction with foreign keys on and deferred to COMMIT, and
 * `foreign_key_check` before COMMIT. Any failure rolls everything back.
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
      const broken = brokenKeys(db, 5);
      if (broken.length > 0) {
        failed = { step: plan.steps.length + 1, description: 'check every key before COMMIT (PRAGMA foreign_key_check)', error: `keys still broken: ${broken.join('; ')}` };
        throw new Error(failed.error);
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      failed ??= { step: 0, description: 'COMMIT', error: messageOf(error) };
    }
  } finally {
    db.close();
  }
  const after = await diagnoseSqlite(path, options);
  return { plan, applied: failed === undefined, backup, steps: failed ? [] : results, ...(failed ? { failed } : {}), after };
}
