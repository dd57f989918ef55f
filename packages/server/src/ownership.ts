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
