import type { SqlQueryable } from '../sql.js';
import type { AppliedMigration, MigrationStep } from './types.js';

/** The table that records every applied step, in the app's schema next to the engine tables. */
export const HISTORY_TABLE = '_dovetail_migrations';

/**
 * One row per applied step, written in the step's own transaction, so the
 * history never claims a step that was rolled back. A row of kind
 * `schema_version` marks the moment the database matched a schema version
 * completely.
 */
export const HISTORY_DDL = `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (
  seq bigserial PRIMARY KEY,
  step text NOT NULL,
  kind text NOT NULL,
  sql text NOT NULL,
  schema_version integer NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

export async function recordStep(tx: SqlQueryable, step: MigrationStep, schemaVersion: number): Promise<void> {
  await tx.query(`INSERT INTO ${HISTORY_TABLE} (step, kind, sql, schema_version) VALUES ($1, $2, $3, $4)`, [step.id, step.kind, step.sql.join(';\n'), schemaVersion]);
}

/** Marks the database as matching `schemaVersion`, unless that is already the last version recorded. */
export async function recordVersion(tx: SqlQueryable, schemaVersion: number): Promise<void> {
  if ((await recordedVersion(tx)) === schemaVersion) return;
  await tx.query(`INSERT INTO ${HISTORY_TABLE} (step, kind, sql, schema_version) VALUES ($1, 'schema_version', '', $2)`, [`schema_version:${schemaVersion}`, schemaVersion]);
}

/** The last schema version the database fully matched, or null if none was recorded. */
export async function recordedVersion(db: SqlQueryable): Promise<number | null> {
  const rows = await db.query<{ v: number }>(`SELECT schema_version AS v FROM ${HISTORY_TABLE} WHERE kind = 'schema_version' ORDER BY seq DESC LIMIT 1`);
  return rows[0]?.v ?? null;
}

export async function readHistory(db: SqlQueryable): Promise<AppliedMigration[]> {
  const rows = await db.query<{ step: string; kind: string; sql: string; schema_version: number; applied_at: Date | string }>(
    `SELECT step, kind, sql, schema_version, applied_at FROM ${HISTORY_TABLE} ORDER BY seq`,
  );
  return rows.map((r) => ({ step: r.step, kind: r.kind, sql: r.sql, schemaVersion: r.schema_version, appliedAt: new Date(r.applied_at) }));
}
