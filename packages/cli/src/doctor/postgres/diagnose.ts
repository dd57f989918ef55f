import { readCatalog } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { keyDrift, tableDrift } from '../drift.js';
import { expectedFromSchema } from '../expected.js';
import { keysToCheck } from '../keys.js';
import { scanOrphans } from '../orphans.js';
import { buildPlan } from '../plan.js';
import { DEFAULT_MAX_LISTED, DEFAULT_RETENTION_MS, makeReport } from '../report.js';
import { shapeFromCatalog } from '../shape.js';
import type { DiagnoseOptions, DoctorReport, Finding } from '../types.js';
import { pgDb } from './connection.js';
import { serverEngineState } from './engine-state.js';
import { authUsersWithoutIdentity } from './identity.js';

/** Diagnoses the connection's current schema (`current_schema()`), as `readCatalog` reads it. */
export async function diagnosePostgres(sql: Sql, target: string, options: DiagnoseOptions): Promise<DoctorReport> {
  const maxListed = options.maxListed ?? DEFAULT_MAX_LISTED;
  options.onProgress?.({ phase: 'read', message: `reading the catalog of ${target}` });
  const shape = shapeFromCatalog(await readCatalog(sql));
  const expected = options.schema ? expectedFromSchema(options.schema) : undefined;
  const findings: Finding[] = [];
  if (expected) findings.push(...tableDrift(expected, shape));
  const checks = keysToCheck(expected, shape);
  findings.push(...keyDrift(checks, shape, expected));
  findings.push(...(await serverEngineState(sql, shape, expected, options.retentionMs ?? DEFAULT_RETENTION_MS)));
  const identity = await authUsersWithoutIdentity(sql, shape, expected, options.authSchema ?? 'auth', maxListed);
  findings.push(...identity.findings);
  const scan = await scanOrphans(pgDb(sql), shape, checks, { maxListed, ...(options.onProgress ? { onProgress: options.onProgress } : {}), ...(identity.create ? { recreated: { table: identity.create.table, ids: new Set(identity.create.users.map((u) => u.id)) } } : {}) });
  findings.push(...scan.findings);
  const plan = buildPlan({ shape, expected, checks, findings, ...(identity.create ? { identity: identity.create } : {}) });
  return makeReport({
    target: shape.schemaName === undefined ? target : `${target}, schema ${shape.schemaName}`,
    kind: 'postgres',
    findings,
    plan,
    summary: { expected: expected ? 'schema' : 'none', tables: shape.tables.size, keysChecked: scan.keysChecked, rowsChecked: scan.rowsChecked, orphans: scan.orphans },
  });
}
