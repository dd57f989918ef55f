import type { ColumnModel, ForeignKeyModel, SchemaModel, TableModel } from '@dovetail/schema';
import { DovetailError } from '../errors.js';

/**
 * What a device database holds of the schema: tables with their columns and
 * keys. Stored as JSON after every migration step, so an interrupted
 * migration resumes from the last committed step.
 */
export interface SchemaSnapshot {
  readonly version: number;
  readonly tables: readonly SnapshotTable[];
}

export interface SnapshotTable {
  readonly name: string;
  readonly columns: readonly ColumnModel[];
  readonly foreignKeys: readonly ForeignKeyModel[];
}

export function snapshotOf(model: SchemaModel): SchemaSnapshot {
  return {
    version: model.version,
    tables: model.graph.order.flatMap((name) => {
      const t = model.tables.find((x) => x.name === name);
      return t ? [{ name: t.name, columns: t.columns, foreignKeys: t.foreignKeys }] : [];
    }),
  };
}

/**
 * One migration step, run in its own transaction:
 * - `create`: a new table and its key indexes;
 * - `add_column`: `ALTER TABLE ADD COLUMN` (nullable or defaulted);
 * - `rebuild`: SQLite's twelve-step table rebuild, for changes ALTER TABLE
 *   cannot make (a new or changed key, nullability, uniqueness, defaults).
 */
export type MigrationStep =
  | { readonly kind: 'create'; readonly table: TableModel; readonly description: string }
  | { readonly kind: 'add_column'; readonly table: TableModel; readonly column: ColumnModel; readonly description: string }
  | { readonly kind: 'rebuild'; readonly table: TableModel; readonly keep: readonly string[]; readonly description: string };

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function refuse(message: string): never {
  throw new DovetailError('migration_refused', message);
}

/**
 * Derives the DDL steps from what the database holds to the target schema.
 * Pure: no database is read. A change that would change or lose rows
 * (dropping a table or column, changing a type or the primary key, adding a
 * required column without a default) is refused with `migration_refused`.
 */
export function planMigration(from: SchemaSnapshot | undefined, to: SchemaModel): MigrationStep[] {
  const target = snapshotOf(to);
  const tableOf = (name: string): TableModel => {
    const t = to.tables.find((x) => x.name === name);
    if (!t) throw new Error(`planMigration: table ${name} missing from model`);
    return t;
  };
  if (!from) {
    return target.tables.map((t) => ({ kind: 'create', table: tableOf(t.name), description: `create table ${t.name}` }));
  }
  if (from.version > to.version) {
    throw new DovetailError('schema_downgrade', `the database is at schema version ${from.version}, newer than this app's version ${to.version}`);
  }
  const before = new Map(from.tables.map((t) => [t.name, t]));
  const after = new Set(target.tables.map((t) => t.name));
  for (const old of from.tables) {
    if (!after.has(old.name)) {
      refuse(`table '${old.name}' is gone from schema version ${to.version}; dropping it would delete its rows. Keep the table in the schema (its visibility may become 'none') or move its rows first.`);
    }
  }

  const steps: MigrationStep[] = [];
  for (const t of target.tables) {
    const old = before.get(t.name);
    const table = tableOf(t.name);
    if (!old) {
      steps.push({ kind: 'create', table, description: `create table ${t.name}` });
      continue;
    }
    const oldCols = new Map(old.columns.map((c) => [c.name, c]));
    const newCols = new Map(t.columns.map((c) => [c.name, c]));
    for (const c of old.columns) {
      if (!newCols.has(c.name)) {
        refuse(`column ${t.name}.${c.name} is gone from schema version ${to.version}; dropping it would lose its values. Keep the column (nullable) instead.`);
      }
    }
    let rebuild = false;
    const added: ColumnModel[] = [];
    for (const c of t.columns) {
      const o = oldCols.get(c.name);
      if (!o) {
        if (!c.nullable && !c.hasDefault) {
          refuse(`new column ${t.name}.${c.name} is required and has no default, so existing rows would need a value; make it nullable or give it a default`);
        }
        if (c.unique || c.primaryKey) rebuild = true;
        added.push(c);
        continue;
      }
      if (o.kind !== c.kind) {
        refuse(`column ${t.name}.${c.name} changes type from ${o.kind} to ${c.kind}, which would rewrite its values; add a new column instead`);
      }
      if (o.primaryKey !== c.primaryKey) {
        refuse(`the primary key of ${t.name} changes (${c.name}); ids are permanent, so create a new table instead`);
      }
      if (!same(o, c)) rebuild = true;
    }
    const oldKeys = JSON.stringify([...old.foreignKeys].sort((a, b) => a.name.localeCompare(b.name)));
    const newKeys = JSON.stringify([...t.foreignKeys].sort((a, b) => a.name.localeCompare(b.name)));
    const keysChanged = oldKeys !== newKeys;
    // A key on a column that already exists, or any other key change, needs a rebuild;
    // SQLite can add a new column with a key only when its default is NULL.
    const addedKeyOk = t.foreignKeys.every((fk) => {
      const wasThere = old.foreignKeys.some((k) => same(k, fk));
      return wasThere || added.some((c) => c.name === fk.column && !c.hasDefault);
    });
    if (keysChanged && (!addedKeyOk || old.foreignKeys.some((k) => !t.foreignKeys.some((n) => same(n, k))))) rebuild = true;

    if (rebuild) {
      steps.push({ kind: 'rebuild', table, keep: old.columns.map((c) => c.name), description: `rebuild table ${t.name} (${describeChange(old, t)})` });
    } else {
      for (const c of added) steps.push({ kind: 'add_column', table, column: c, description: `add column ${t.name}.${c.name}` });
    }
  }
  return steps;
}

function describeChange(old: SnapshotTable, next: SnapshotTable): string {
  const parts: string[] = [];
  const oldKeys = new Set(old.foreignKeys.map((k) => JSON.stringify(k)));
  const newKeys = new Set(next.foreignKeys.map((k) => JSON.stringify(k)));
  for (const k of next.foreignKeys) if (!oldKeys.has(JSON.stringify(k))) parts.push(`key ${k.column} -> ${k.refTable}.${k.refColumn}`);
  for (const k of old.foreignKeys) if (!newKeys.has(JSON.stringify(k))) parts.push(`drop key ${k.column}`);
  const oldCols = new Map(old.columns.map((c) => [c.name, c]));
  for (const c of next.columns) {
    const o = oldCols.get(c.name);
    if (!o) parts.push(`new column ${c.name}`);
    else if (!same(o, c)) parts.push(`column ${c.name} changed`);
  }
  return parts.join(', ') || 'definition changed';
}

/** Applies one step to a snapshot, as the database will look after it. */
export function applyStepToSnapshot(snapshot: SchemaSnapshot | undefined, step: MigrationStep): SchemaSnapshot {
  const entry: SnapshotTable = { name: step.table.name, columns: step.table.columns, foreignKeys: step.table.foreignKeys };
  const tables = snapshot?.tables ?? [];
  if (step.kind === 'add_column') {
    return {
      version: snapshot?.version ?? 0,
      tables: tables.map((t) => (t.name === step.table.name ? { ...t, columns: [...t.columns, step.column], foreignKeys: step.table.foreignKeys.filter((fk) => t.foreignKeys.some((k) => k.name === fk.name) || fk.column === step.column.name) } : t)),
    };
  }
  const exists = tables.some((t) => t.name === step.table.name);
  return {
    version: snapshot?.version ?? 0,
    tables: exists ? tables.map((t) => (t.name === step.table.name ? entry : t)) : [...tables, entry],
  };
}
