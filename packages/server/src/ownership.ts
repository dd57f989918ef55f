import { quoteIdent as q } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import type { SqlQueryable } from './sql.js';

const MAX_DEPTH = 32;

/**
 * The user who owns a row: its owner column, or the owner of the parent its
 * `through` key points at, walked up the chain. Undefined when the chain
 * ends at a missing row.
 */
export async function ownerOf(tx: SqlQueryable, schema: Schema, table: TableModel, row: Readonly<Record<string, unknown>>): Promise<string | undefined> {
  let t = table;
  let r = row;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const owner = t.owner;
    if (owner.kind === 'column') {
      const v = r[owner.column];
      return typeof v === 'string' ? v : undefined;
    }
    const parentId = r[owner.column];
    if (typeof parentId !== 'string') return undefined;
    const parent = schema.table(owner.table);
    const fk = t.foreignKeys.find((k) => k.column === owner.column);
    const rows = await tx.query(`SELECT * FROM ${q(parent.name)} WHERE ${q(fk?.refColumn ?? parent.primaryKey)} = $1`, [parentId]);
    const next = rows[0];
    if (!next) return undefined;
    t = parent;
    r = next;
  }
  return undefined;
}

/**
 * The owner of the row aliased `alias` of `table`, as a SQL expression
 * (text): its owner column, or a subquery up the `through` chain. Lets a
 * query that reads a row for another reason return its owner too.
 */
export function ownerExpression(schema: Schema, table: TableModel, alias: string, depth = 0): string {
  const owner = table.owner;
  if (owner.kind === 'column') return `${alias}.${q(owner.column)}::text`;
  if (depth >= MAX_DEPTH) return 'NULL::text';
  const parent = schema.table(owner.table);
  const fk = table.foreignKeys.find((k) => k.column === owner.column);
  const p = `own${depth}`;
  return `(SELECT ${ownerExpression(schema, parent, p, depth + 1)} FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = ${alias}.${q(owner.column)})`;
}
