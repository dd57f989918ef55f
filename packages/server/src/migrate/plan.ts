import { postgresColumn, postgresCreateTable, postgresForeignKey, postgresIndexes, quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, Schema, TableModel } from '@dovetail/schema';
import type { Catalog, CatalogColumn, CatalogTable } from '../catalog.js';
import { captureIsCurrent, captureSql, captureStep, engineStep } from './engine-steps.js';
import { addKeySteps, existingTableKeySteps } from './plan-keys.js';
import type { MigrationPlan, MigrationStep, RefusedChange } from './types.js';

/** The plan's phases, in the order they run. */
interface Phases {
  engine: MigrationStep[];
  tables: MigrationStep[];
  columns: MigrationStep[];
  keys: MigrationStep[];
  indexes: MigrationStep[];
  capture: MigrationStep[];
  validations: MigrationStep[];
  refused: RefusedChange[];
}

/**
 * Compares the schema module with what the database holds and lists the
 * steps that bring the database in line, without touching it (the catalog
 * is read beforehand). A pure function of its inputs: the same schema and
 * catalog always give the same plan, which is how `apply` can plan again
 * before every step and know that another instance already did one.
 *
 * Only additive changes are steps: new tables, new columns, new keys (added
 * `NOT VALID`, then validated), keys made deferrable, key indexes, unique
 * constraints the schema declares and change capture. The phases run in an order where everything a step needs
 * exists already: tables parents first, columns before the keys on them,
 * and validations last, since they are the steps that old data can fail.
 * Anything that would change or lose rows is listed as `refused` instead.
 */
export function planMigration(schema: Schema, catalog: Catalog): MigrationPlan {
  const p: Phases = { engine: [], tables: [], columns: [], keys: [], indexes: [], capture: [], validations: [], refused: [] };
  const engine = engineStep(catalog);
  if (engine) p.engine.push(engine);

  // Tables that will exist when the key phase runs: a key of a new table is
  // added with it when its parent exists by then, else in the key phase.
  const present = new Set(schema.tables.map((t) => t.name).filter((n) => catalog.tables.has(n)));
  for (const model of schema.tables) {
    const table = catalog.tables.get(model.name);
    if (table) planExistingTable(model, table, p);
    else planNewTable(model, present, p);
  }
  return {
    schemaVersion: schema.version,
    steps: [...p.engine, ...p.tables, ...p.columns, ...p.keys, ...p.indexes, ...p.capture, ...p.validations],
    refused: p.refused,
  };
}

/**
 * A new table is created empty, in one step with the keys whose parents
 * exist already, its key indexes and its capture trigger, so it is never
 * seen half made. Keys to tables created later (cycles) follow in the key
 * phase.
 */
function planNewTable(model: TableModel, present: Set<string>, p: Phases): void {
  present.add(model.name);
  const now = model.foreignKeys.filter((fk) => present.has(fk.refTable));
  const later = model.foreignKeys.filter((fk) => !present.has(fk.refTable));
  const extras = [now.length > 0 ? 'its keys' : '', model.foreignKeys.length > 0 ? 'key indexes' : '', model.visibility.kind !== 'none' ? 'change capture' : ''].filter(Boolean);
  p.tables.push({
    id: `create_table:${model.name}`,
    kind: 'create_table',
    table: model.name,
    description: `Create table ${model.name} (${model.columns.map((c) => c.name).join(', ')})${extras.length > 0 ? ` with ${listing(extras)}` : ''}`,
    sql: [postgresCreateTable(model), ...now.map((fk) => postgresForeignKey(fk)), ...postgresIndexes(model), ...captureSql(model)],
  });
  for (const fk of later) {
    const { add, validate } = addKeySteps(fk);
    p.keys.push(add);
    p.validations.push(validate);
  }
}

/** `a`, `a and b`, `a, b and c`. */
const listing = (items: readonly string[]): string => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`);

function planExistingTable(model: TableModel, table: CatalogTable, p: Phases): void {
  const pk = model.primaryKey;
  if (table.primaryKey.length !== 1 || table.primaryKey[0] !== pk) {
    p.refused.push({
      id: `change_primary_key:${model.name}`,
      kind: 'change_primary_key',
      table: model.name,
      column: pk,
      reason: `${model.name}'s primary key is (${table.primaryKey.join(', ') || 'none'}) in the database but ${pk} in the schema; every synced row is known to devices by its id`,
      action: `Keep the primary key of an existing table; to change it, create a new table and move the rows with mutations`,
    });
  }
  for (const column of model.columns) {
    const found = table.columns.get(column.name);
    if (found) {
      compareColumn(model.name, column, found, p);
      if (column.unique && !column.primaryKey && !table.indexes.some((i) => i.unique && i.columns.length === 1 && i.columns[0] === column.name)) addUnique(model.name, column, p);
    } else if (!column.primaryKey) addColumn(model.name, column, table, p);
  }
  for (const name of table.columns.keys()) {
    if (model.columns.some((c) => c.name === name)) continue;
    p.refused.push({
      id: `drop_column:${model.name}.${name}`,
      kind: 'drop_column',
      table: model.name,
      column: name,
      reason: `column ${model.name}.${name} is in the database but not in the schema; dropping it would lose its data, so migrate never does`,
      action: `Declare ${name} in the schema again; or, once its data is no longer needed, drop it yourself (ALTER TABLE ${q(model.name)} DROP COLUMN ${q(name)}) and plan again`,
    });
  }
  const keys = existingTableKeySteps(model, table);
  p.keys.push(...keys.keys);
  p.indexes.push(...keys.indexes);
  p.validations.push(...keys.validations);
  p.refused.push(...keys.refused);
  if (model.visibility.kind !== 'none' && !captureIsCurrent(table)) p.capture.push(captureStep(model));
}

/** The Postgres type of a column as `format_type` prints it, from the same DDL that creates it. */
function postgresType(column: ColumnModel): string {
  const bare = postgresColumn({ ...column, nullable: true, primaryKey: false, unique: false, hasDefault: false });
  return bare.slice(q(column.name).length + 1);
}

/** `DEFAULT ...` of a column, cut from the DDL that creates it so literals are written one way only. */
function postgresDefault(column: ColumnModel): string {
  const full = postgresColumn(column);
  const withoutDefault = postgresColumn({ ...column, hasDefault: false });
  return full.slice(withoutDefault.length + ' DEFAULT '.length);
}

function addColumn(table: string, column: ColumnModel, found: CatalogTable, p: Phases): void {
  const required = !column.nullable && !column.hasDefault;
  if (required && found.rowEstimate > 0) {
    p.refused.push({
      id: `not_null_on_rows:${table}.${column.name}`,
      kind: 'not_null_on_rows',
      table,
      column: column.name,
      reason: `new column ${table}.${column.name} is NOT NULL without a default, but ${table} holds ${found.rowEstimate > 1 ? `about ${found.rowEstimate} rows` : 'rows'}, which would have no value for it; adding it would fail`,
      action: `Give ${column.name} a default (.default(...)) or make it nullable (.nullable()) in the schema`,
    });
    return;
  }
  const shape = [postgresType(column), column.nullable ? 'nullable' : 'NOT NULL', column.hasDefault ? `default ${postgresDefault(column)}` : ''].filter(Boolean).join(', ');
  p.columns.push({
    id: `add_column:${table}.${column.name}`,
    kind: 'add_column',
    table,
    description: `Add column ${table}.${column.name} (${shape})${required ? `; ${table} is empty now, and the step fails if rows arrive before it runs` : ''}`,
    sql: [`ALTER TABLE ${q(table)} ADD COLUMN ${postgresColumn(column)}`],
  });
}

/**
 * A column the schema declares unique and the database does not: devices
 * enforce it (SQLite has the constraint), so without it the server would
 * accept values that no device can hold. Fails, changing nothing, where
 * existing rows share a value.
 */
function addUnique(table: string, column: ColumnModel, p: Phases): void {
  p.indexes.push({
    id: `add_unique:${table}.${column.name}`,
    kind: 'add_unique',
    table,
    description: `Make ${table}.${column.name} unique, as the schema declares it (fails, changing nothing, if existing rows share a value)`,
    sql: [`ALTER TABLE ${q(table)} ADD UNIQUE (${q(column.name)})`],
  });
}

function compareColumn(table: string, column: ColumnModel, found: CatalogColumn, p: Phases): void {
  const type = postgresType(column);
  if (found.type !== type) {
    p.refused.push({
      id: `retype_column:${table}.${column.name}`,
      kind: 'retype_column',
      table,
      column: column.name,
      reason: `${table}.${column.name} is ${found.type} in the database but ${column.kind} (${type}) in the schema; converting it could change or lose values`,
      action: `Keep the column's type; add a new column of the new type and copy the values over with mutations`,
    });
    return;
  }
  if (!column.nullable && found.nullable) {
    p.refused.push({
      id: `set_not_null:${table}.${column.name}`,
      kind: 'set_not_null',
      table,
      column: column.name,
      reason: `${table}.${column.name} is nullable in the database but NOT NULL in the schema; rows holding NULL would break it, and devices may still write NULL`,
      action: `Declare it .nullable() again; or fill in every NULL, then run ALTER TABLE ${q(table)} ALTER COLUMN ${q(column.name)} SET NOT NULL yourself once no device writes NULL`,
    });
  } else if (column.nullable && !found.nullable && !column.primaryKey) {
    p.columns.push({
      id: `drop_not_null:${table}.${column.name}`,
      kind: 'drop_not_null',
      table,
      description: `Allow NULL in ${table}.${column.name}, as the schema declares it nullable`,
      sql: [`ALTER TABLE ${q(table)} ALTER COLUMN ${q(column.name)} DROP NOT NULL`],
    });
  }
  if (column.hasDefault && !found.hasDefault) {
    p.columns.push({
      id: `set_default:${table}.${column.name}`,
      kind: 'set_default',
      table,
      description: `Give ${table}.${column.name} the default ${postgresDefault(column)} for new rows (existing rows keep their values)`,
      sql: [`ALTER TABLE ${q(table)} ALTER COLUMN ${q(column.name)} SET DEFAULT ${postgresDefault(column)}`],
    });
  }
}
