import type { ColumnModel, ForeignKeyModel, Schema } from '@dovetail/schema';

/**
 * The tables and keys the database should have: from the schema module
 * when one is given, else (on a device file) from the schema snapshot the
 * engine stored at its last migration.
 */
export interface Expected {
  readonly source: 'schema' | 'device_snapshot';
  /** The identity table and its key column; unknown from a snapshot. */
  readonly identity?: { readonly table: string; readonly column: string; readonly columns: readonly ColumnModel[] };
  /** Parents first. */
  readonly tables: readonly ExpectedTable[];
}

export interface ExpectedTable {
  readonly name: string;
  readonly columns: readonly ColumnModel[];
  readonly primaryKey: string;
  readonly foreignKeys: readonly ForeignKeyModel[];
  /** Whether devices hold it (so the server captures its changes); unknown from a snapshot. */
  readonly synced: boolean;
}

export function expectedFromSchema(schema: Schema): Expected {
  const identity = schema.identity;
  return {
    source: 'schema',
    identity: { table: identity.name, column: identity.primaryKey, columns: identity.columns },
    tables: schema.tables.map((t) => ({ name: t.name, columns: t.columns, primaryKey: t.primaryKey, foreignKeys: t.foreignKeys, synced: t.visibility.kind !== 'none' })),
  };
}

interface SnapshotTable {
  readonly name: string;
  readonly columns: readonly ColumnModel[];
  readonly foreignKeys: readonly ForeignKeyModel[];
}

const isSnapshotTable = (t: unknown): t is SnapshotTable => {
  const x = t as Partial<SnapshotTable> | null;
  return typeof x?.name === 'string' && Array.isArray(x.columns) && Array.isArray(x.foreignKeys);
};

/** The engine's stored snapshot (meta `schema_snapshot`), or undefined when it is absent or unreadable. */
export function expectedFromSnapshot(json: string | undefined): Expected | undefined {
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const tables = (parsed as { tables?: unknown } | null)?.tables;
  if (!Array.isArray(tables) || !tables.every(isSnapshotTable)) return undefined;
  return {
    source: 'device_snapshot',
    tables: tables.map((t) => ({
      name: t.name,
      columns: t.columns,
      primaryKey: t.columns.find((c) => c.primaryKey)?.name ?? 'id',
      foreignKeys: t.foreignKeys,
      synced: true,
    })),
  };
}
