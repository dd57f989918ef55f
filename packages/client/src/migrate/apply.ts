import { quoteIdent as q, sqliteColumn, sqliteCreateTable, sqliteIndexes } from '@dovetail/schema';
import type { SchemaModel } from '@dovetail/schema';
import { enableForeignKeys } from '../boot.js';
import type { SqliteConnection, SqlValue } from '../driver.js';
import { META, MetaKey, readMeta, writeMeta } from '../engine-tables.js';
import { describeViolation, DovetailError } from '../errors.js';
import { applyStepToSnapshot, planMigration, snapshotOf } from './plan.js';
import type { MigrationStep, SchemaSnapshot } from './plan.js';

export interface MigrationProgress {
  readonly step: number;
  readonly of: number;
  readonly description: string;
}

export interface MigrationReport {
  readonly from: number | undefined;
  readonly to: number;
  readonly steps: readonly string[];
}

const REBUILD_PREFIX = '_dovetail_rebuild_';

/**
 * Phase 1 (schema): brings the database to `model`, one step per
 * transaction. Each step is checked with `foreign_key_check` before COMMIT
 * and records the new snapshot in the same transaction, so a failed or
 * interrupted step leaves the previous step's state, and opening again
 * resumes. Keys are on again (and verified) after every step.
 */
export async function migrate(
  conn: SqliteConnection,
  model: SchemaModel,
  driverName: string,
  onProgress?: (p: MigrationProgress) => void,
): Promise<MigrationReport> {
  const stored = await readMeta(conn, MetaKey.SchemaSnapshot);
  let snapshot: SchemaSnapshot | undefined = stored === undefined ? undefined : (JSON.parse(stored) as SchemaSnapshot);
  const from = snapshot?.version;
  const target = await readMeta(conn, MetaKey.MigrationTarget);
  if (target !== undefined && Number(target) > model.version) {
    throw new DovetailError(
      'schema_downgrade',
      `a migration to schema version ${target} was started on this database by a newer app and is not finished; this app has version ${model.version}. Open it with the newer app to finish the migration`,
    );
  }
  if (snapshot && snapshot.version === model.version) {
    const pending = planMigration(snapshot, model);
    if (pending.length > 0) {
      throw new DovetailError(
        'migration_refused',
        `the schema changed (${pending.map((s) => s.description).join('; ')}) but its version is still ${model.version}; bump the version so devices migrate`,
      );
    }
    return { from, to: model.version, steps: [] };
  }
  const steps = planMigration(snapshot, model);
  for (const [i, step] of steps.entries()) {
    onProgress?.({ step: i + 1, of: steps.length, description: step.description });
    const next = applyStepToSnapshot(snapshot, step);
    await runStep(conn, step, next, model.version, driverName, `step ${i + 1} of ${steps.length} (${step.description})`);
    snapshot = next;
  }
  const final = snapshotOf(model);
  await conn.exec('BEGIN IMMEDIATE');
  try {
    await writeMeta(conn, MetaKey.SchemaSnapshot, JSON.stringify(final));
    await writeMeta(conn, MetaKey.SchemaVersion, String(model.version));
    await conn.run(`DELETE FROM ${META} WHERE key = ?`, [MetaKey.MigrationTarget]);
    await conn.exec('COMMIT');
  } catch (error) {
    await conn.exec('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return { from, to: model.version, steps: steps.map((s) => s.description) };
}

async function runStep(conn: SqliteConnection, step: MigrationStep, next: SchemaSnapshot, target: number, driverName: string, label: string): Promise<void> {
  const rebuild = step.kind === 'rebuild';
  // Twelve-step procedure, step 1: keys off, outside any transaction, so that
  // dropping the old table does not cascade into its children.
  if (rebuild) {
    await conn.exec('PRAGMA foreign_keys = OFF');
    const rows = await conn.all<{ foreign_keys: number }>('PRAGMA foreign_keys');
    if (rows[0]?.foreign_keys !== 0) {
      await enableForeignKeys(conn, driverName);
      throw new DovetailError('migration_failed', `${label}: could not turn foreign keys off for the table rebuild; nothing was changed`);
    }
  }
  try {
    await conn.exec('BEGIN IMMEDIATE');
    try {
      for (const sql of stepSql(step)) await conn.exec(sql);
      if (rebuild) await checkKeys(conn, label);
      await writeMeta(conn, MetaKey.SchemaSnapshot, JSON.stringify(next));
      // Marks the database as on its way to `target`, so an older app that
      // finds it half-migrated says so instead of asking for a version bump.
      await writeMeta(conn, MetaKey.MigrationTarget, String(target));
      await conn.exec('COMMIT');
    } catch (error) {
      await conn.exec('ROLLBACK').catch(() => undefined);
      if (error instanceof DovetailError) throw error;
      throw new DovetailError('migration_failed', `${label} failed: ${error instanceof Error ? error.message : String(error)}; the database is as it was before this step`, { cause: error });
    }
  } finally {
    if (rebuild) await enableForeignKeys(conn, driverName);
  }
}

function stepSql(step: MigrationStep): string[] {
  const t = step.table;
  switch (step.kind) {
    case 'create':
      return [sqliteCreateTable(t), ...sqliteIndexes(t)];
    case 'add_column': {
      const fk = t.foreignKeys.find((k) => k.column === step.column.name);
      const sql = [`ALTER TABLE ${q(t.name)} ADD COLUMN ${sqliteColumn(step.column, fk)}`];
      if (fk) sql.push(`CREATE INDEX IF NOT EXISTS ${q(`${t.name}_${fk.column}_idx`)} ON ${q(t.name)} (${q(fk.column)})`);
      return sql;
    }
    case 'rebuild': {
      // Steps 4-8 of SQLite's documented procedure: new table, copy, drop,
      // rename, indexes. The engine creates no triggers or views on app tables.
      const tmp = REBUILD_PREFIX + t.name;
      const cols = step.keep.map(q).join(', ');
      return [
        sqliteCreateTable(t, tmp),
        `INSERT INTO ${q(tmp)} (${cols}) SELECT ${cols} FROM ${q(t.name)}`,
        `DROP TABLE ${q(t.name)}`,
        `ALTER TABLE ${q(tmp)} RENAME TO ${q(t.name)}`,
        ...sqliteIndexes(t),
      ];
    }
  }
}

/** Step 10: every key must hold before COMMIT; name the rows otherwise. */
async function checkKeys(conn: SqliteConnection, label: string): Promise<void> {
  const broken = await conn.all<BrokenKey>('PRAGMA foreign_key_check');
  if (broken.length === 0) return;
  const sample: string[] = [];
  for (const b of broken.slice(0, 5)) sample.push(await describeBroken(conn, b));
  throw new DovetailError('migration_failed', `${label} would leave ${broken.length} row(s) with broken keys (${sample.join('; ')}); the step was rolled back and the database is as it was before it. Repair those rows, then open again.`);
}

interface BrokenKey {
  [column: string]: SqlValue;
  table: string;
  rowid: number | null;
  parent: string;
  fkid: number;
}

/**
 * Names a broken key by the row's primary key, its key column and value
 * (as G2 asks of every key error). The rowid that `foreign_key_check` gives
 * is the rowid in the rebuilt copy, which the rollback discards and which
 * need not match the row's rowid in the database, so it is looked up here,
 * inside the still-open transaction, and never shown.
 */
async function describeBroken(conn: SqliteConnection, b: BrokenKey): Promise<string> {
  const fallback = `a ${b.table} row has no ${b.parent} row`;
  if (b.rowid === null) return fallback;
  const keys = await conn.all<{ id: number; from: string; table: string; to: string | null }>('SELECT id, "from", "table", "to" FROM pragma_foreign_key_list(?)', [b.table]);
  const key = keys.find((k) => k.id === b.fkid);
  const pk = (await conn.all<{ name: string }>('SELECT name FROM pragma_table_info(?) WHERE pk = 1', [b.table]))[0]?.name;
  if (!key || pk === undefined) return fallback;
  const row = (await conn.all(`SELECT ${q(pk)} AS id, ${q(key.from)} AS value FROM ${q(b.table)} WHERE rowid = ?`, [b.rowid]))[0];
  if (!row) return fallback;
  return describeViolation({
    table: b.table,
    column: key.from,
    value: row.value ?? null,
    rowId: String(row.id),
    referencedTable: key.table,
    referencedColumn: key.to ?? 'id',
    kind: 'missing_parent',
  });
}
