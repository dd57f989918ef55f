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
    const c = this.column(name);
    const where = `${this.table.name}.${name}`;
    if (value === null || value === undefined) {
      if (!c.nullable) throw new DovetailError('invalid_value', `${where} may not be null`);
      return null;
    }
    switch (c.kind) {
      case 'text':
        if (typeof value !== 'string') throw invalid(where, 'a string', value);
        return value;
      case 'integer':
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(where, 'a safe integer', value);
        return value;
      case 'real':
        if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(where, 'a finite number', value);
        return value;
      case 'boolean':
        if (typeof value !== 'boolean') throw invalid(where, 'true or false', value);
        return value ? 1 : 0;
      case 'json':
        try {
          return JSON.stringify(value);
        } catch (error) {
          throw new DovetailError('invalid_value', `${where} must be JSON-serializable`, { cause: error });
        }
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
      throw new DovetailError('invalid_value', `${this.table.name}.${this.table.primaryKey} is the primary key and must be a non-empty string, got ${describe(id)}`);
    }
    return id;
  }

  checkInsert(row: RowValues): void {
    for (const name of this.required) {
      if (row[name] === undefined) throw new DovetailError('missing_column', `insert into ${this.table.name} is missing required column ${name}`);
    }
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}'`;
  if (value === undefined) return 'nothing';
  try {
    return `${typeof value} ${(JSON.stringify(value) as string | undefined)?.slice(0, 40) ?? typeof value}`;
  } catch {
    return typeof value;
  }
}

function invalid(where: string, expected: string, value: unknown): DovetailError {
  return new DovetailError('invalid_value', `${where} must be ${expected}, got ${describe(value)}`);
}
