import type { Schema } from '@dovetail/schema';
import { readCatalog } from '../catalog.js';
import type { SqlQueryable } from '../sql.js';
import { HISTORY_TABLE, readHistory, recordedVersion } from './history.js';
import { planMigration } from './plan.js';
import type { MigrationStatus } from './types.js';

/**
 * Where the database stands against the schema: the version recorded by
 * the last complete migration, the history of applied steps, what is still
 * to do and what migrate refuses to do. Reads only.
 */
export async function migrationStatus(sql: SqlQueryable, schema: Schema): Promise<MigrationStatus> {
  const catalog = await readCatalog(sql);
  const plan = planMigration(schema, catalog);
  const hasHistory = catalog.tables.has(HISTORY_TABLE);
  return {
    recordedVersion: hasHistory ? await recordedVersion(sql) : null,
    schemaVersion: schema.version,
    history: hasHistory ? await readHistory(sql) : [],
    pending: plan.steps,
    refused: plan.refused,
    inSync: plan.steps.length === 0 && plan.refused.length === 0,
  };
}
