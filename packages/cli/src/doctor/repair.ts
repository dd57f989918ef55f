import { DoctorError } from './errors.js';
import { openPostgres } from './postgres/connection.js';
import { repairPostgres } from './postgres/repair.js';
import { repairSqlite } from './sqlite/repair.js';
import { describeTarget } from './target.js';
import type { DoctorReport, DoctorTarget, RepairOptions, RepairResult } from './types.js';

/**
 * Repairs what `report` found, following its plan. Without `yes` nothing is
 * touched and the plan is returned to be printed. With `yes`: a backup
 * first, then the whole plan in one transaction (keys on, checked before
 * COMMIT), then a fresh diagnosis (`after`). A failing step rolls
 * everything back and is named in `failed`.
 *
 * Pass the same schema and options as to `diagnose`, for the diagnosis after.
 */
export async function repair(target: DoctorTarget, report: DoctorReport, options: RepairOptions): Promise<RepairResult> {
  if (report.kind !== target.kind) {
    throw new DoctorError('wrong_target', `the report is of a ${report.kind} database, the target is ${target.kind}`, 'diagnose the target first and repair with that report');
  }
  const plan = report.plan ?? { dialect: target.kind, steps: [], manual: [] };
  if (!options.yes || plan.steps.length === 0) return { plan, applied: false, steps: [], ...(plan.steps.length === 0 ? { after: report } : {}) };
  if (target.kind === 'sqlite') return repairSqlite(target.path, plan, options);
  const pg = await openPostgres(target);
  try {
    return await repairPostgres(pg.sql, describeTarget(target), plan, options);
  } finally {
    await pg.close();
  }
}
