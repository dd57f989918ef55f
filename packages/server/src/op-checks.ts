import { checkValue } from '@dovetail/schema';
import type { ColumnModel, Schema, TableModel } from '@dovetail/schema';
import type { Op, RowValues } from '@dovetail/protocol';
import { Refusal } from './refusal.js';

/**
 * The checks of an op that need no database: its table is synced, its
 * columns exist, its values fit their columns, and an insert carries every
 * required column. Each failure is a `Refusal` naming the op.
 */
export function tableOf(schema: Schema, op: Op, index: number): TableModel {
  const name = (op as { table?: unknown }).table;
  const table = typeof name === 'string' && schema.hasTable(name) ? schema.table(name) : undefined;
  if (!table || table.visibility.kind === 'none') {
    throw new Refusal('invalid', `ops[${index}]: no synced table '${String(name)}'`, typeof name === 'string' ? { table: name } : {});
  }
  return table;
}

export function checkColumns(table: TableModel, values: RowValues, index: number, full: boolean): ColumnModel[] {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const out: ColumnModel[] = [];
  for (const [name, value] of Object.entries(values)) {
    const c = byName.get(name);
    if (!c) throw new Refusal('invalid', `ops[${index}]: ${table.name} has no column '${name}'`, { table: table.name, column: name });
    const problem = checkValue(c, value);
    if (problem) throw new Refusal('invalid', `ops[${index}]: ${table.name}.${name} ${problem}`, { table: table.name, column: name });
    out.push(c);
  }
  if (full) {
    for (const c of table.columns) {
      if (!c.nullable && !c.hasDefault && values[c.name] === undefined) {
        throw new Refusal('invalid', `ops[${index}]: insert into ${table.name} is missing required column ${c.name}`, { table: table.name, column: c.name });
      }
    }
  }
  return out;
}
