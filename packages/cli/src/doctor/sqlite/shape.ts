import { quoteIdent as q } from '@dovetail/schema';
import type { DbShape, ShapeColumn, ShapeKey, ShapeOnDelete, ShapeTable } from '../shape.js';
import { keyClauses } from './key-clauses.js';
import type { SqliteHandle } from './connection.js';

interface ColumnRow {
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
}

interface KeyRow {
  id: number;
  seq: number;
  table: string;
  from: string;
  to: string | null;
  on_delete: string;
}

const ON_DELETE: Record<string, ShapeOnDelete> = { CASCADE: 'cascade', 'SET NULL': 'set null', RESTRICT: 'restrict', 'NO ACTION': 'no action', 'SET DEFAULT': 'set default' };

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** A table's indexes (those of UNIQUE constraints included), with their key columns and whether they are unique over all rows. */
function indexesOf(db: SqliteHandle, table: string): ShapeTable['indexes'] {
  const list = db.prepare(`SELECT name, "unique", partial FROM pragma_index_list(?)`).all(table) as { name: string; unique: number; partial: number }[];
  return list.map((i) => {
    const columns = (db.prepare(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`).all(i.name) as { name: string | null }[]).map((c) => c.name);
    // An expression column has no name: such an index is not a plain unique column.
    return { name: i.name, columns: columns.filter((c): c is string => c !== null), unique: i.unique === 1 && i.partial === 0 && columns.every((c) => c !== null) };
  });
}

/** The file's tables, columns and keys, from its pragmas and its `CREATE TABLE` texts. */
export function readSqliteShape(db: SqliteHandle): DbShape {
  const tables = new Map<string, ShapeTable>();
  const list = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).all() as { name: string; sql: string | null }[];
  const withoutRowid = new Set((db.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr = 1`).all() as { name: string }[]).map((r) => r.name));
  const columnsOf = new Map<string, ColumnRow[]>();
  for (const t of list) columnsOf.set(t.name, db.prepare(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)`).all(t.name) as ColumnRow[]);
  const pkOf = (table: string): string[] =>
    (columnsOf.get(table) ?? [])
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
  for (const t of list) {
    const cols = columnsOf.get(t.name) ?? [];
    const columns = new Map<string, ShapeColumn>(cols.map((c) => [c.name, { name: c.name, type: c.type, nullable: c.notnull === 0 && c.pk === 0, hasDefault: c.dflt_value !== null }]));
    const clauses = keyClauses(t.sql ?? '');
    const rows = db.prepare(`SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`).all(t.name) as KeyRow[];
    const byId = new Map<number, KeyRow[]>();
    for (const r of rows) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
    // SQLite numbers keys from the last declared; declaration order reads better.
    const foreignKeys: ShapeKey[] = [...byId.entries()].sort((a, b) => b[0] - a[0]).map(([, parts]) => {
      const first = parts[0] as KeyRow;
      const from = parts.map((p) => p.from);
      const parentPk = pkOf(list.find((x) => same(x.name, first.table))?.name ?? first.table);
      const to = parts.map((p, i) => p.to ?? parentPk[i] ?? 'rowid');
      const clause = clauses.find((c) => same(c.refTable, first.table) && c.columns.length === from.length && c.columns.every((x, i) => same(x, from[i] ?? '')));
      return {
        name: `${t.name}_${from.join('_')}_fkey`,
        columns: from,
        refTable: list.find((x) => same(x.name, first.table))?.name ?? first.table,
        refColumns: to,
        onDelete: ON_DELETE[first.on_delete.toUpperCase()] ?? 'no action',
        deferrable: clause?.deferrable ?? false,
        initiallyDeferred: clause?.initiallyDeferred ?? false,
        validated: true,
        enabled: true,
      };
    });
    const hasRowid = !withoutRowid.has(t.name);
    // max(rowid) is one b-tree step; count(*) would read the whole table.
    const estimate = hasRowid ? Number((db.prepare(`SELECT max(rowid) AS m FROM ${q(t.name)}`).get() as { m: number | null }).m ?? 0) : 0;
    tables.set(t.name, { name: t.name, columns, primaryKey: pkOf(t.name), foreignKeys, triggers: [], indexes: indexesOf(db, t.name), rowEstimate: estimate, hasRowid });
  }
  return { dialect: 'sqlite', tables };
}
