import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { quoteIdent as q } from '@dovetail/schema';
import { readCatalog } from '@dovetail/server';
import type { Sql, SqlQueryable } from '@dovetail/server';
import { stampOf } from '../backup-name.js';
import { DoctorError, messageOf } from '../errors.js';
import { ROW_ACTIONS } from '../plan-rows.js';
import type { RepairOptions, RepairPlan, RepairResult, RepairStep, RepairStepResult } from '../types.js';
import { backupScript } from './backup.js';
import type { UndoRecord } from './backup.js';
import { diagnosePostgres } from './diagnose.js';

/** Runs one step, reading first what the backup needs; returns the rows it changed. */
async function runStep(tx: SqlQueryable, step: RepairStep): Promise<{ rows: number; undo: UndoRecord }> {
  let before: string[] = [];
  if (step.rows) {
    const r = await tx.query<{ r: string }>(`SELECT to_jsonb(${step.rows.alias})::text AS r FROM ${q(step.table)} AS ${step.rows.alias} WHERE ${step.rows.where}`, step.rows.params);
    before = r.map((x) => x.r);
  }
  if (step.action === 'create_identity_row') {
    const r = await tx.query<{ id: string }>(`WITH done AS (${step.sql} RETURNING ${q(step.column ?? 'id')}::text AS id) SELECT id FROM done`, step.params);
    return { rows: r.length, undo: { step, before, inserted: r.map((x) => x.id) } };
  }
  if (ROW_ACTIONS.has(step.action)) {
    const [r] = await tx.query<{ n: number }>(`WITH done AS (${step.sql} RETURNING 1) SELECT count(*)::int AS n FROM done`, step.params);
    return { rows: r?.n ?? 0, undo: { step, before, inserted: [] } };
  }
  await tx.query(step.sql, step.params);
  return { rows: 0, undo: { step, before, inserted: [] } };
}

/**
 * Applies a Postgres plan in one transaction. The backup script (every row
 * deleted or changed, and how to undo each key change) is written and
 * synced to disk before COMMIT; if any step fails, or the backup cannot be
 * written, the transaction rolls back and nothing changes.
 */
export async function repairPostgres(sql: Sql, target: string, plan: RepairPlan, options: RepairOptions): Promise<RepairResult> {
  const now = options.now?.() ?? Date.now();
  const catalog = await readCatalog(sql);
  const schemaName = catalog.schema;
  const path = join(resolve(options.backupDir ?? process.cwd()), `dovetail-doctor-backup-${schemaName}-${stampOf(now)}.sql`);
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    throw new DoctorError('cannot_open', `cannot write the backup ${path}: ${messageOf(error)}; nothing was changed`, 'pass a writable --backup-dir');
  }
  options.onProgress?.({ phase: 'backup', path });
  const results: RepairStepResult[] = [];
  let failed: RepairResult['failed'];
  try {
    await sql.transaction(async (tx) => {
      const applied: UndoRecord[] = [];
      for (const step of plan.steps) {
        options.onProgress?.({ phase: 'repair', step: step.number, steps: plan.steps.length, description: step.description });
        try {
          const done = await runStep(tx, step);
          applied.push(done.undo);
          results.push({ number: step.number, action: step.action, description: step.description, rows: done.rows });
        } catch (error) {
          failed = { step: step.number, description: step.description, error: messageOf(error) };
          throw error;
        }
      }
      try {
        writeSync(fd, backupScript(schemaName, new Date(now).toISOString(), applied, (t) => catalog.tables.get(t)?.primaryKey ?? []));
        fsyncSync(fd);
      } catch (error) {
        failed = { step: plan.steps.length + 1, description: `write the backup ${path}`, error: messageOf(error) };
        throw error;
      }
    });
  } catch (error) {
    failed ??= { step: plan.steps.length + 1, description: 'COMMIT (deferred keys are checked here)', error: messageOf(error) };
  } finally {
    closeSync(fd);
  }
  // Nothing changed: a backup of nothing would only confuse.
  if (failed) rmSync(path, { force: true });
  const after = await diagnosePostgres(sql, target, options);
  return { plan, applied: failed === undefined, ...(failed ? { failed } : { backup: path }), steps: failed ? [] : results, after };
}
