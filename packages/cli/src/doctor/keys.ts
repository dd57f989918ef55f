import type { ForeignKeyModel } from '@dovetail/schema';
import type { Expected } from './expected.js';
import { isEngineTable } from './shape.js';
import type { DbShape, ShapeKey } from './shape.js';
import type { KeyRef } from './types.js';

/**
 * A key the doctor checks for orphans: declared by the schema, by the
 * database, or both. Schema keys are checked even when the database lacks
 * them, since a missing key is exactly when orphans pile up.
 */
export interface KeyCheck {
  readonly ref: KeyRef;
  readonly expected?: ForeignKeyModel;
  readonly db?: ShapeKey;
  /** Whether every key column accepts NULL (the database's column when it exists, else the schema's). */
  readonly nullable: boolean;
}

const sameColumns = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((c, i) => c === b[i]);

/** The database key on `table.columns`, preferring one that points at `refTable`. */
export function findDbKey(shape: DbShape, table: string, columns: readonly string[], refTable: string): ShapeKey | undefined {
  const keys = shape.tables.get(table)?.foreignKeys.filter((k) => sameColumns(k.columns, columns)) ?? [];
  return keys.find((k) => k.refTable === refTable) ?? keys[0];
}

export function refOfModel(fk: ForeignKeyModel): KeyRef {
  return { name: fk.name, table: fk.table, columns: [fk.column], refTable: fk.refTable, refColumns: [fk.refColumn] };
}

export function refOfShape(table: string, k: ShapeKey): KeyRef {
  return { name: k.name, table, columns: k.columns, refTable: k.refTable, refColumns: k.refColumns };
}

/** Every key to check: the schema's (matched with the database's), then the database's own others. Engine tables are left out. */
export function keysToCheck(expected: Expected | undefined, shape: DbShape): KeyCheck[] {
  const out: KeyCheck[] = [];
  const matched = new Set<ShapeKey>();
  for (const t of expected?.tables ?? []) {
    for (const fk of t.foreignKeys) {
      const db = findDbKey(shape, fk.table, [fk.column], fk.refTable);
      if (db) matched.add(db);
      const column = shape.tables.get(fk.table)?.columns.get(fk.column);
      // A key the database has under another name is repaired under that name.
      const ref = db ? { ...refOfModel(fk), name: db.name } : refOfModel(fk);
      out.push({ ref, expected: fk, ...(db ? { db } : {}), nullable: column ? column.nullable : fk.nullable });
    }
  }
  for (const t of shape.tables.values()) {
    if (isEngineTable(t.name)) continue;
    for (const k of t.foreignKeys) {
      if (matched.has(k)) continue;
      const nullable = k.columns.every((c) => t.columns.get(c)?.nullable ?? false);
      out.push({ ref: refOfShape(t.name, k), db: k, nullable });
    }
  }
  return out;
}

/**
 * Whether the database can answer "which rows of this key are orphans": the
 * child table and key columns exist, and so does the parent with its
 * columns. Returns what is missing otherwise.
 */
export function missingForScan(shape: DbShape, ref: KeyRef): string | undefined {
  const child = shape.tables.get(ref.table);
  if (!child) return `table ${ref.table} does not exist`;
  const lacking = ref.columns.filter((c) => !child.columns.has(c));
  if (lacking.length > 0) return `${ref.table} has no column ${lacking.join(', ')}`;
  const parent = shape.tables.get(ref.refTable);
  if (!parent) return `table ${ref.refTable} does not exist`;
  const lackingRef = ref.refColumns.filter((c) => !parent.columns.has(c));
  if (lackingRef.length > 0) return `${ref.refTable} has no column ${lackingRef.join(', ')}`;
  return undefined;
}
