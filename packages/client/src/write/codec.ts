import { checkValue, describeValue } from '@dovetail/schema';
import type { ColumnModel, TableModel } from '@dovetail/schema';
import type { RowValues, Value } from '@dovetail/protocol';
import type { SqlRow, SqlValue } from '../driver.js';
import { DovetailError } from '../errors.js';

/**
 * Per-table value checking and conversion between app values and SQLite
 * values (booleans as 0/1, JSON as text). Compiled once per schema.
 */
export class TableCodec {
  readonly table: TableModel;
  readonly columns: ReadonlyMap<string, ColumnModel>;
  readonly required: readonly string[];

  constructor(table: TableModel) {
    this.table = table;
    this.columns = new Map(table.columns.map((c) => [c.name, c]));
    this.required = table.columns.filter((c) => !c.nullable && !c.hasDefault).map((c) => c.name);
  }

  column(name: string): ColumnModel {
    const c = this.columns.get(name);
    if (!c) {
      throw new DovetailError('unknown_column', `${this.table.name} has no column '${name}'; its columns are ${[...this.columns.keys()].join(', ')}`);
    }
    return c;
  }

  /** Checks and converts one value for column `name`. */
  encode(name: string, value: unknown): SqlValue {
    return this.encodeAs(this.column(name), value);
  }

  /** Checks and converts one value for column `c` (of this table). */
  encodeAs(c: ColumnModel, value: unknown): SqlValue {
    const problem = checkValue(c, value);
    if (problem) throw new DovetailError('invalid_value', `${this.table.name}.${c.name} ${problem}`);
    if (value === null || value === undefined) return null;
    switch (c.kind) {
      case 'boolean':
        return value ? 1 : 0;
      case 'json':
        return JSON.stringify(value);
      default:
        return value as string | number;
    }
  }

  /** Converts a row read from SQLite into app values. */
  decode(row: SqlRow): Record<string, Value> {
    const out: Record<string, Value> = {};
    for (const [name, raw] of Object.entries(row)) {
      const c = this.columns.get(name);
      if (raw === null || !c) {
        out[name] = raw as Value;
        continue;
      }
      out[name] = c.kind === 'boolean' ? raw === 1 || raw === 1n : c.kind === 'json' ? (JSON.parse(String(raw)) as Value) : typeof raw === 'bigint' ? Number(raw) : (raw as Value);
    }
    return out;
  }

  /** The primary key of a full row or insert; throws if absent. */
  idOf(row: RowValues): string {
    const id = row[this.table.primaryKey];
    if (typeof id !== 'string' || id.length === 0) {
      throw new DovetailError('invalid_value', `${this.table.name}.${this.table.primaryKey} is the primary key and must be a non-empty string, got ${describeValue(id)}`);
    }
    return id;
  }

  checkInsert(row: RowValues): void {
    for (const name of this.required) {
      if (row[name] === undefined) throw new DovetailError('missing_column', `insert into ${this.table.name} is missing required column ${name}`);
    }
  }
}
