import type { ColumnModel, ForeignKeyModel, SchemaModel, TableModel } from './model.js';
import { quoteIdent as q, quoteLiteral } from './sql.js';

const TYPES = { text: 'TEXT', integer: 'INTEGER', real: 'REAL', boolean: 'INTEGER', json: 'TEXT' } as const;
const ACTIONS = { cascade: 'CASCADE', 'set null': 'SET NULL', restrict: 'NO ACTION' } as const;

/**
 * `CREATE TABLE` for SQLite. Tables are STRICT, so a value of the wrong type
 * is refused rather than stored. Keys are `DEFERRABLE INITIALLY DEFERRED`:
 * a transaction may write a child before its parent, and the check runs at
 * COMMIT. `restrict` is declared `NO ACTION` (not `RESTRICT`, which SQLite
 * checks immediately even when deferred) so a mutation may delete children
 * and parent in any order; the commit still fails while children remain.
 *
 * @example
 * sqliteCreateTable(posts)
 * // CREATE TABLE "posts" ("id" TEXT NOT NULL PRIMARY KEY,
 * //   "author_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, ...) STRICT
 */
export function sqliteCreateTable(table: TableModel, as: string = table.name): string {
  const keyOf = new Map(table.foreignKeys.map((fk) => [fk.column, fk]));
  const columns = table.columns.map((c) => sqliteColumn(c, keyOf.get(c.name)));
  return `CREATE TABLE ${q(as)} (\n  ${columns.join(',\n  ')}\n) STRICT`;
}

/** One column definition, with its key inline. */
export function sqliteColumn(c: ColumnModel, fk?: ForeignKeyModel): string {
  const parts = [q(c.name), TYPES[c.kind]];
  if (!c.nullable) parts.push('NOT NULL');
  if (c.primaryKey) parts.push('PRIMARY KEY');
  else if (c.unique) parts.push('UNIQUE');
  if (c.hasDefault) parts.push(`DEFAULT ${sqliteLiteral(c)}`);
  if (c.kind === 'boolean') parts.push(`CHECK (${q(c.name)} IN (0, 1))`);
  if (c.kind === 'json') parts.push(`CHECK (json_valid(${q(c.name)}))`);
  if (fk) {
    parts.push(`REFERENCES ${q(fk.refTable)} (${q(fk.refColumn)}) ON DELETE ${ACTIONS[fk.onDelete]} DEFERRABLE INITIALLY DEFERRED`);
  }
  return parts.join(' ');
}

function sqliteLiteral(c: ColumnModel): string {
  const v = c.defaultValue;
  if (v === null || v === undefined) return 'NULL';
  if (c.kind === 'json') return quoteLiteral(JSON.stringify(v));
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return String(v);
  return quoteLiteral(v);
}

/** Indexes on key columns, so cascades and key checks do not scan. */
export function sqliteIndexes(table: TableModel): string[] {
  return table.foreignKeys.map((fk) => `CREATE INDEX ${q(`${table.name}_${fk.column}_idx`)} ON ${q(table.name)} (${q(fk.column)})`);
}

/** The whole schema for a new SQLite database, parents first. */
export function sqliteSchemaDdl(schema: SchemaModel): string[] {
  const byName = new Map(schema.tables.map((t) => [t.name, t]));
  return schema.graph.order.flatMap((name) => {
    const t = byName.get(name);
    return t ? [sqliteCreateTable(t), ...sqliteIndexes(t)] : [];
  });
}
