import { DoctorError } from './errors.js';
import { openPostgres } from './postgres/connection.js';
import { diagnosePostgres } from './postgres/diagnose.js';
import { diagnoseSqlite } from './sqlite/diagnose.js';
import { describeTarget } from './target.js';
import type { DiagnoseOptions, DoctorReport, DoctorTarget } from './types.js';

/**
 * Examines a database: whether its keys are declared and enforced, every
 * orphan row of every key (the schema's, even where the database lacks
 * them, and the database's own), drift from the schema module, and the sync
 * engine's state; with a repair plan when something can be repaired. Only
 * reads. Throws a `DoctorError` when the target cannot be examined at all.
 *
 * @example
 * const report = await diagnose(parseTarget('./dovetail-ann-1f2e.db'), { schema });
 * process.stdout.write(renderReport(report));
 * process.exitCode = exitCodeOf(report);
 */
export async function diagnose(target: DoctorTarget, options: DiagnoseOptions = {}): Promise<DoctorReport> {
  if (options.maxListed !== undefined && !(Number.isInteger(options.maxListed) && options.maxListed >= 0)) {
    throw new DoctorError('wrong_target', `maxListed must be a whole number, got ${options.maxListed}`, 'give a count of rows to list per key');
  }
  if (target.kind === 'sqlite') return diagnoseSqlite(target.path, options);
  const pg = await openPostgres(target);
  try {
    return await diagnosePostgres(pg.sql, describeTarget(target), options);
  } finally {
    await pg.close();
  }
}
