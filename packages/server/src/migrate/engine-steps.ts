import type { TableModel } from '@dovetail/schema';
import type { Catalog, CatalogTable } from '../catalog.js';
import { captureDdl, engineDdl, ENGINE_TABLES } from '../setup.js';
import type { MigrationStep } from './types.js';

/** The indexes the engine's DDL creates, read from the DDL itself so the two never drift apart. */
function engineIndexes(): { name: string; table: string }[] {
  const indexes: { name: string; table: string }[] = [];
  for (const ddl of engineDdl()) {
    const index = /^CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON (\w+)/.exec(ddl);
    if (index?.[1] && index[2]) indexes.push({ name: index[1], table: index[2] });
  }
  return indexes;
}

/** The columns the engine's DDL adds to tables of earlier versions, read from the DDL itself. */
function engineColumns(): { table: string; column: string }[] {
  const columns: { table: string; column: string }[] = [];
  for (const ddl of engineDdl()) {
    const added = /^ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)/.exec(ddl);
    if (added?.[1] && added[2]) columns.push({ table: added[1], column: added[2] });
  }
  return columns;
}

/** The functions the engine's DDL creates, read from the DDL itself. */
function engineFunctions(): string[] {
  return engineDdl().flatMap((ddl) => {
    const fn = /^CREATE OR REPLACE FUNCTION "?(\w+)"?\(/.exec(ddl)?.[1];
    return fn ? [fn] : [];
  });
}

/**
 * The engine's tables (changes, ledger, clients, refused rows, settings) and
 * functions (the shared capture function, the checks of batched pushes), as
 * one step when any table, index, column or function of theirs is missing. The statements are idempotent, so running them over a
 * half-present engine only adds what is missing.
 */
export function engineStep(catalog: Catalog): MigrationStep | undefined {
  const missingTables = ENGINE_TABLES.filter((t) => !catalog.tables.has(t));
  const missingIndexes = engineIndexes().filter((i) => !catalog.tables.get(i.table)?.indexes.some((x) => x.name === i.name));
  const missingColumns = engineColumns().filter((c) => catalog.tables.has(c.table) && !catalog.tables.get(c.table)?.columns.has(c.column));
  const missingFunctions = engineFunctions().filter((f) => !catalog.functions.has(f));
  if (missingTables.length === 0 && missingIndexes.length === 0 && missingColumns.length === 0 && missingFunctions.length === 0) return undefined;
  const what = [
    missingTables.length > 0 ? `tables ${missingTables.join(', ')}` : '',
    missingIndexes.length > 0 && missingTables.length === 0 ? `indexes ${missingIndexes.map((i) => i.name).join(', ')}` : '',
    missingColumns.length > 0 ? `columns ${missingColumns.map((c) => `${c.table}.${c.column}`).join(', ')}` : '',
    missingFunctions.length > 0 && missingTables.length === 0 ? `functions ${missingFunctions.join(', ')}` : '',
  ]
    .filter((part) => part !== '')
    .join(' and ');
  // Set up by an earlier version: its ledger numbering moves to the clients table (see setup.ts).
  const upgrade = catalog.tables.get('_dovetail_ledger')?.indexes.some((i) => i.name === '_dovetail_ledger_order')
    ? `; fill _dovetail_clients from the ledger's numbering, then drop the ledger's index _dovetail_ledger_order`
    : '';
  return {
    id: 'engine',
    kind: 'engine',
    description: `Create the sync engine's ${what} (and its functions: change capture, the checks of batched pushes)${upgrade}`,
    sql: engineDdl(),
  };
}

/**
 * Whether a synced table's changes are captured: without the trigger, rows
 * written by other code never reach devices (G13). `_dovetail_announce` is
 * the trigger of older versions, which the capture DDL drops.
 */
export function captureIsCurrent(table: CatalogTable): boolean {
  return table.triggers.some((t) => t.name === '_dovetail_capture' && t.enabled) && !table.triggers.some((t) => t.name === '_dovetail_announce');
}

export function captureStep(table: TableModel): MigrationStep {
  return {
    id: `capture:${table.name}`,
    kind: 'capture',
    table: table.name,
    description: `Capture every change of ${table.name} (trigger _dovetail_capture), so rows written by any code reach devices`,
    sql: captureDdl(table.name, table.primaryKey),
  };
}

/** The capture statements a new synced table gets in its own create step; none for server-only tables. */
export function captureSql(table: TableModel): string[] {
  return table.visibility.kind === 'none' ? [] : captureDdl(table.name, table.primaryKey);
}
