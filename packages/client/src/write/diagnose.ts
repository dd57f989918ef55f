import { quoteIdent as q } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import type { Op } from '@dovetail/protocol';
import type { SqliteConnection, SqlValue } from '../driver.js';
import { ForeignKeyViolation } from '../errors.js';
import type { KeyViolation } from '../errors.js';

const MAX_REPORTED = 100;

/**
 * Tables whose keys a write to `touched` could break: the touched tables and
 * every table below them (a delete can orphan children and grandchildren).
 */
export function tablesToCheck(schema: Schema, touched: Iterable<string>): string[] {
  const out = new Set<string>();
  const visit = (t: string): void => {
    if (out.has(t)) return;
    out.add(t);
    for (const fk of schema.childrenOf(t)) visit(fk.table);
  };
  for (const t of touched) visit(t);
  return [...out];
}

/**
 * Names the rows behind a failed COMMIT. SQLite only says "FOREIGN KEY
 * constraint failed"; inside the still-open transaction,
 * `PRAGMA foreign_key_check` lists each child row and which of its keys is
 * broken. Returns undefined when no key is broken (the failure was
 * something else).
 */
export async function diagnoseForeignKeys(tx: SqliteConnection, schema: Schema, ops: readonly Op[]): Promise<ForeignKeyViolation | undefined> {
  const touched = new Set(ops.map((o) => o.table));
  const deleted = new Set(ops.filter((o) => o.op === 'delete').map((o) => `${o.table}\u0000${o.id}`));
  const violations = await findViolations(tx, schema, tablesToCheck(schema, touched), deleted);
  return violations.length > 0 ? new ForeignKeyViolation(violations) : undefined;
}

/**
 * Every broken key in `tables`, at most 100. `deleted` holds `table\0id` of
 * parents the current write deleted, to tell the two kinds apart.
 */
export async function findViolations(tx: SqliteConnection, schema: Schema, tables: Iterable<string>, deleted: ReadonlySet<string> = new Set()): Promise<KeyViolation[]> {
  const violations: KeyViolation[] = [];
  for (const table of tables) {
    const broken = await tx.all<{ rowid: number; fkid: number }>(`PRAGMA foreign_key_check(${q(table)})`);
    if (broken.length === 0) continue;
    const keys = await tx.all<{ id: number; from: string; table: string; to: string | null }>(`PRAGMA foreign_key_list(${q(table)})`);
    const model = schema.table(table);
    for (const b of broken) {
      if (violations.length >= MAX_REPORTED) break;
      const key = keys.find((k) => k.id === b.fkid);
      if (!key) continue;
      const rows = await tx.all<{ id: string; value: SqlValue }>(`SELECT ${q(model.primaryKey)} AS id, ${q(key.from)} AS value FROM ${q(table)} WHERE rowid = ?`, [b.rowid]);
      const row = rows[0];
      if (!row) continue;
      const referencedColumn = key.to ?? schema.table(key.table).primaryKey;
      violations.push({
        table,
        column: key.from,
        value: row.value,
        rowId: row.id,
        referencedTable: key.table,
        referencedColumn,
        kind: deleted.has(`${key.table}\u0000${String(row.value)}`) ? 'parent_deleted' : 'missing_parent',
      });
    }
  }
  return violations;
}
