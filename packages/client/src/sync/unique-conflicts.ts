import { quoteIdent as q } from '@dovetail/schema';
import type { TableModel } from '@dovetail/schema';
import type { SqliteConnection, SqlValue } from '../driver.js';
import { DovetailError } from '../errors.js';

/**
 * A pulled batch is one consistent snapshot of the server, but it is
 * applied row by row, and SQLite checks UNIQUE at once (it cannot defer
 * it, unlike keys). So a batch that moves a unique value from one row to
 * another (a swap of handles, a value freed and taken) can collide with
 * the old value of a row that comes later in the same batch; so can a
 * device's own pending write, whose row the batch refreshes.
 *
 * Such a row is "parked": its unique value is set aside (NULL, or a
 * placeholder no real value uses when the column is NOT NULL) until its
 * own change in the batch gives it the server's value. A conflicting row
 * the batch does not touch means the device holds something the server
 * never had: that is an error, and the next sync starts over.
 */
export async function parkUniqueConflicts(
  tx: SqliteConnection,
  table: TableModel,
  row: Readonly<Record<string, SqlValue>>,
  comesLater: (table: string, id: string) => boolean,
): Promise<void> {
  const id = row[table.primaryKey];
  let parked = 0;
  for (const c of table.columns) {
    if (!c.unique || c.primaryKey) continue;
    const value = row[c.name];
    if (value === null || value === undefined) continue;
    const holders = await tx.all<{ id: string }>(`SELECT ${q(table.primaryKey)} AS id FROM ${q(table.name)} WHERE ${q(c.name)} = ? AND ${q(table.primaryKey)} IS NOT ?`, [value, id ?? null]);
    for (const holder of holders) {
      if (!comesLater(table.name, holder.id)) {
        throw new DovetailError(
          'pull_conflict',
          `the pulled ${table.name} '${String(id)}' has ${table.name}.${c.name} = ${JSON.stringify(value)}, which ${table.name} '${holder.id}' holds on this device but not on the server; the device will resync from scratch on its next sync`,
        );
      }
      const placeholder = c.nullable ? null : c.kind === 'text' ? `\u0000dovetail:parked:${holder.id}` : -1 - (await rowidOf(tx, table, holder.id));
      await tx.run(`UPDATE ${q(table.name)} SET ${q(c.name)} = ? WHERE ${q(table.primaryKey)} = ?`, [placeholder, holder.id]);
      parked++;
    }
  }
  if (parked === 0) {
    throw new DovetailError('pull_conflict', `the pulled ${table.name} '${String(id)}' breaks a UNIQUE constraint on this device, and no row of the batch holds its value; the device will resync from scratch on its next sync`);
  }
}

async function rowidOf(tx: SqliteConnection, table: TableModel, id: string): Promise<number> {
  const rows = await tx.all<{ r: number }>(`SELECT rowid AS r FROM ${q(table.name)} WHERE ${q(table.primaryKey)} = ?`, [id]);
  // Far below any value an app would store, and distinct per row.
  return 4_000_000_000_000_000 + (rows[0]?.r ?? 0);
}
