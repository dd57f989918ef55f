import type { ColumnModel, ForeignKeyModel, SchemaModel, TableModel } from './model.js';
import { quoteIdent as q, quoteLiteral } from './sql.js';

const TYPES = { text: 'text', integer: 'bigint', real: 'double precision', boolean: 'boolean', json: 'jsonb' } as const;
const ACTIONS = { cascade: 'CASCADE', 'set null': 'SET NULL', restrict: 'NO ACTION' } as const;

/**
 * `CREATE TABLE` for Postgres, without its foreign keys (see
 * `postgresForeignKey`). Works on Postgres 13 and later.
 */
export function postgresCreateTable(table: TableModel): string {
  const columns = table.columns.map(postgresColumn);
  return `CREATE TABLE ${q(table.name)} (\n  ${columns.join(',\n  ')}\n)`;
}

export function postgresColumn(c: ColumnModel): string {
  const parts = [q(c.name), TYPES[c.kind]];
  if (!c.nullable) parts.push('NOT NULL');
  if (c.primaryKey) parts.push('PRIMARY KEY');
  else if (c.unique) parts.push('UNIQUE');
  if (c.hasDefault) parts.push(`DEFAULT ${postgresLiteral(c)}`);
  return parts.join(' ');
}

function postgresLiteral(c: ColumnModel): string {
  const v = c.defaultValue;
  if (v === null || v === undefined) return 'NULL';
  if (c.kind === 'json') return `${quoteLiteral(JSON.stringify(v))}::jsonb`;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return String(v);
  return quoteLiteral(v);
}

/**
 * A key as `ALTER TABLE ... ADD CONSTRAINT`, always `DEFERRABLE INITIALLY
 * DEFERRED`: `SET CONSTRAINTS ALL DEFERRED` does nothing for a key that was
 * not declared deferrable, and a sync transaction must be able to write a
 * child before its parent. `restrict` is `NO ACTION`, because Postgres
 * checks `RESTRICT` immediately even in a deferred transaction.
 *
 * `notValid` adds the key without checking existing rows (for migrations,
 * followed by `VALIDATE CONSTRAINT`).
 */
export function postgresForeignKey(fk: ForeignKeyModel, options: { notValid?: boolean } = {}): string {
  return (
    `ALTER TABLE ${q(fk.table)} ADD CONSTRAINT ${q(fk.name)} FOREIGN KEY (${q(fk.column)}) ` +
    `REFERENCES ${q(fk.refTable)} (${q(fk.refColumn)}) ON DELETE ${ACTIONS[fk.onDelete]} DEFERRABLE INITIALLY DEFERRED` +
    (options.notValid ? ' NOT VALID' : '')
  );
}

export function postgresIndexes(table: TableModel): string[] {
  return table.foreignKeys.map((fk) => `CREATE INDEX ${q(`${table.name}_${fk.column}_idx`)} ON ${q(table.name)} (${q(fk.column)})`);
}

/**
 * The whole schema for a new Postgres database: tables parents first, then
 * every key (so cycles need no special order), then indexes.
 */
export function postgresSchemaDdl(schema: SchemaModel): string[] {
  const byName = new Map(schema.tables.map((t) => [t.name, t]));
  const ordered = schema.graph.order.flatMap((n) => {
    const t = byName.get(n);
    return t ? [t] : [];
  });
  return [
    ...ordered.map(postgresCreateTable),
    ...ordered.flatMap((t) => t.foreignKeys.map((fk) => postgresForeignKey(fk))),
    ...ordered.flatMap(postgresIndexes),
  ];
}
