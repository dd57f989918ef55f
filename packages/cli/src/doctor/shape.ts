import type { Catalog } from '@dovetail/server';

/**
 * What a database holds right now, in one form for SQLite and Postgres, so
 * that drift, key and orphan checks are written once. Postgres fills it
 * from `readCatalog`; SQLite from its pragmas and table definitions.
 */
export interface DbShape {
  readonly dialect: 'sqlite' | 'postgres';
  /** Postgres: the schema that was read (for qualified names in backups). */
  readonly schemaName?: string;
  readonly tables: ReadonlyMap<string, ShapeTable>;
}

export interface ShapeColumn {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
  readonly hasDefault: boolean;
}

export type ShapeOnDelete = 'cascade' | 'set null' | 'restrict' | 'no action' | 'set default';

export interface ShapeKey {
  readonly name: string;
  readonly columns: readonly string[];
  readonly refTable: string;
  /** Resolved: a SQLite key that names no column points at the parent's primary key. */
  readonly refColumns: readonly string[];
  readonly onDelete: ShapeOnDelete;
  readonly deferrable: boolean;
  readonly initiallyDeferred: boolean;
  readonly validated: boolean;
  readonly enabled: boolean;
}

export interface ShapeTable {
  readonly name: string;
  readonly columns: ReadonlyMap<string, ShapeColumn>;
  readonly primaryKey: readonly string[];
  readonly foreignKeys: readonly ShapeKey[];
  readonly triggers: readonly { readonly name: string; readonly enabled: boolean }[];
  /** With those of UNIQUE constraints; `unique`: over all rows (no WHERE, no expressions). */
  readonly indexes: readonly { readonly name: string; readonly columns: readonly string[]; readonly unique: boolean }[];
  readonly rowEstimate: number;
  /** SQLite: whether rows have a rowid (so a scan can go in rowid ranges). */
  readonly hasRowid: boolean;
}

/** The engine's own tables start with this; the doctor checks them apart from the app's. */
export const ENGINE_PREFIX = '_dovetail_';

export const isEngineTable = (name: string): boolean => name.startsWith(ENGINE_PREFIX);

export function shapeFromCatalog(catalog: Catalog): DbShape {
  const tables = new Map<string, ShapeTable>();
  for (const t of catalog.tables.values()) {
    tables.set(t.name, {
      name: t.name,
      columns: t.columns,
      primaryKey: t.primaryKey,
      foreignKeys: t.foreignKeys,
      triggers: t.triggers,
      indexes: t.indexes,
      rowEstimate: t.rowEstimate,
      hasRowid: false,
    });
  }
  return { dialect: 'postgres', schemaName: catalog.schema, tables };
}
