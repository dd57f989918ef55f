import { tableDrift, keyDrift } from '../drift.js';
import { expectedFromSchema, expectedFromSnapshot } from '../expected.js';
import type { Expected } from '../expected.js';
import { plural } from '../format.js';
import { keysToCheck } from '../keys.js';
import { scanOrphans } from '../orphans.js';
import { buildPlan } from '../plan.js';
import { DEFAULT_MAX_LISTED, DEFAULT_RETENTION_MS, makeReport } from '../report.js';
import { isEngineTable } from '../shape.js';
import type { DbShape } from '../shape.js';
import type { DiagnoseOptions, DoctorReport, Finding } from '../types.js';
import { openSqlite, sqliteDb } from './connection.js';
import { deviceEngineState, deviceIdentity, readDeviceMeta } from './engine-state.js';
import type { DeviceState } from './engine-state.js';
import { readSqliteShape } from './shape.js';

/**
 * SQLite enforces keys per connection, so the file itself can only show
 * which keys it declares; whether they held is what the orphan scan shows.
 */
function keysFinding(shape: DbShape, foreignKeys: boolean, device: boolean): Finding {
  const tables = [...shape.tables.values()].filter((t) => !isEngineTable(t.name));
  const keys = tables.reduce((n, t) => n + t.foreignKeys.length, 0);
  if (!foreignKeys) {
    return {
      code: 'keys_not_enforced',
      severity: 'problem',
      message: 'this SQLite library cannot turn foreign keys on (PRAGMA foreign_keys reads back 0), so no key of this file is enforced here; use a SQLite build with foreign key support',
      details: { reason: 'sqlite_keys_unavailable' },
    };
  }
  if (keys === 0 && tables.length > 1) {
    return {
      code: 'keys_not_enforced',
      severity: 'warning',
      message: `no table of this file declares a foreign key, so nothing stops rows that point at nothing; declare the keys in the schema and ${device ? 'let the app migrate the file' : 'rebuild the tables'}`,
      details: { reason: 'no_keys_declared' },
    };
  }
  return {
    code: 'keys_declared',
    severity: 'info',
    message:
      `${plural(keys, 'foreign key')} declared in ${plural(tables.length, 'table')}. SQLite checks them only on connections that turn PRAGMA foreign_keys on` +
      (device ? ': the Dovetail engine does on every connection and refuses to run otherwise; any other program that writes this file must too' : '; every program that writes this file must do so'),
    details: { keys, tables: tables.length, foreignKeysPragma: foreignKeys },
  };
}

/**
 * What the file should hold. A device file is migrated by the app when it
 * opens it, so a schema module of another version than the file's is not
 * drift: the file is then held to its own stored snapshot (the identity
 * table still comes from the module).
 */
function expectedFor(options: DiagnoseOptions, device: DeviceState, findings: Finding[]): Expected | undefined {
  const snapshot = expectedFromSnapshot(device.snapshot);
  if (!options.schema) {
    if (snapshot) {
      findings.push({ code: 'not_checked', severity: 'info', message: "no schema module given: checked against the schema snapshot the engine stored in the file; the owner's identity row needs --schema to be checked", details: { what: 'identity row' } });
    }
    return snapshot;
  }
  const module = expectedFromSchema(options.schema);
  if (!snapshot || device.schemaVersion === undefined || device.schemaVersion === options.schema.version) return module;
  const newer = options.schema.version > device.schemaVersion;
  findings.push({
    code: 'not_checked',
    severity: newer ? 'info' : 'warning',
    message: newer
      ? `the file is at schema version ${device.schemaVersion} and the schema module at ${options.schema.version}: the app migrates the file when it opens it, so the file was checked against its own version ${device.schemaVersion}`
      : `the file is at schema version ${device.schemaVersion}, newer than the schema module's ${options.schema.version} (an older app would refuse to open it); the file was checked against its own version ${device.schemaVersion}`,
    details: { what: `schema version ${options.schema.version} of the module` },
  });
  return { ...snapshot, ...(module.identity ? { identity: module.identity } : {}) };
}

export async function diagnoseSqlite(path: string, options: DiagnoseOptions): Promise<DoctorReport> {
  const { db, foreignKeys } = openSqlite(path, { readonly: true });
  try {
    const now = options.now?.() ?? Date.now();
    const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    options.onProgress?.({ phase: 'read', message: `reading the tables of ${path}` });
    const shape = readSqliteShape(db);
    const device = readDeviceMeta(db, shape);
    const findings: Finding[] = [keysFinding(shape, foreignKeys, device.isDevice)];
    const expected = expectedFor(options, device, findings);
    if (expected) findings.push(...tableDrift(expected, shape));
    const checks = keysToCheck(expected, shape);
    findings.push(...keyDrift(checks, shape, expected));
    if (device.isDevice) findings.push(deviceEngineState(db, path, shape, now, retentionMs));
    const identity = device.isDevice ? deviceIdentity(db, shape, expected, device.owner) : {};
    if (identity.finding) findings.push(identity.finding);
    const scan = await scanOrphans(sqliteDb(db), shape, checks, { maxListed: options.maxListed ?? DEFAULT_MAX_LISTED, ...(options.onProgress ? { onProgress: options.onProgress } : {}), ...(identity.create ? { recreated: { table: identity.create.table, ids: new Set(identity.create.users.map((u) => u.id)) } } : {}) });
    findings.push(...scan.findings);
    const plan = buildPlan({ shape, expected, checks, findings, ...(identity.create ? { identity: identity.create } : {}) });
    return makeReport({
      target: path,
      kind: 'sqlite',
      findings,
      plan,
      summary: { expected: expected?.source ?? 'none', tables: shape.tables.size, keysChecked: scan.keysChecked, rowsChecked: scan.rowsChecked, orphans: scan.orphans },
    });
  } finally {
    db.close();
  }
}
