import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, Schema } from '@dovetail/schema';
import type { Op, RowValues } from '@dovetail/protocol';
import { sqliteCodeOf } from '../driver.js';
import type { SqliteConnection, SqlValue } from '../driver.js';
import { DovetailError } from '../errors.js';
import { TableCodec } from './codec.js';
import { hasKeysInOrder } from './row-keys.js';

/** An op checked against the schema and turned into one SQL statement. */
export interface PreparedOp {
  /** The op as stored and sent: known fields only, no undefined values. */
  readonly op: Op;
  readonly primaryKey: string;
  readonly sql: string;
  readonly params: readonly SqlValue[];
  /** update and delete must change exactly one row. */
  readonly mustChange: boolean;
}

const OP_KINDS = new Set(['insert', 'upsert', 'update', 'delete']);

/**
 * Turns ops into SQL against one schema. Statements are cached by shape, so
 * a 10,000-row insert builds its SQL once. Never emits `INSERT OR REPLACE`,
 * which deletes and re-inserts and so fires cascades on the children.
 */
export class OpCompiler {
  readonly #schema: Schema;
  readonly #codecs = new Map<string, TableCodec>();
  readonly #sql = new Map<string, string>();
  /** The last complete insert or upsert shape per table. */
  readonly #lastShape = new Map<string, RowShape>();

  constructor(schema: Schema) {
    this.#schema = schema;
    for (const t of schema.syncedTables) this.#codecs.set(t.name, new TableCodec(t));
  }

  codec(table: unknown): TableCodec {
    const codec = typeof table === 'string' ? this.#codecs.get(table) : undefined;
    if (!codec) {
      const known = [...this.#codecs.keys()].join(', ');
      const hidden = typeof table === 'string' && this.#schema.hasTable(table) ? ` ('${table}' has visibility 'none' and lives only on the server)` : '';
      throw new DovetailError('unknown_table', `no synced table '${String(table)}'${hidden}; tables on this device: ${known}`);
    }
    return codec;
  }

  prepare(op: Op): PreparedOp {
    if (!op || typeof op !== 'object' || !OP_KINDS.has((op as { op?: unknown }).op as string)) {
      throw new DovetailError('invalid_value', `an op must be { op: 'insert' | 'upsert' | 'update' | 'delete', table, ... }, got ${JSON.stringify(op)?.slice(0, 80)}`);
    }
    const codec = this.codec(op.table);
    const t = codec.table;
    switch (op.op) {
      case 'insert':
      case 'upsert': {
        const row = checkRow(op.row, `${op.op} into ${t.name}`);
        codec.idOf(row);
        codec.checkInsert(row);
        // A row shaped like the last one into this table (a bulk insert): its statement and columns are known.
        const last = this.#lastShape.get(t.name);
        if (last && last.kind === op.op && last.matches(row)) {
          const params = new Array<SqlValue>(last.columns.length);
          for (let i = 0; i < last.columns.length; i++) {
            const c = last.columns[i] as ColumnModel;
            params[i] = codec.encodeAs(c, row[c.name]);
          }
          return { op: { op: op.op, table: t.name, row }, primaryKey: t.primaryKey, sql: last.sql, params, mustChange: false };
        }
        const cols: string[] = [];
        const params: SqlValue[] = [];
        let complete = true;
        for (const c in row) {
          const v = row[c];
          if (v === undefined) {
            complete = false;
            continue;
          }
          cols.push(c);
          params.push(codec.encode(c, v));
        }
        const key = `${op.op}|${t.name}|${cols.join(',')}`;
        let sql = this.#sql.get(key);
        if (!sql) {
          sql = `INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
          if (op.op === 'upsert') {
            const set = cols.filter((c) => c !== t.primaryKey);
            sql += set.length === 0 ? ` ON CONFLICT (${q(t.primaryKey)}) DO NOTHING` : ` ON CONFLICT (${q(t.primaryKey)}) DO UPDATE SET ${set.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}`;
          }
          this.#sql.set(key, sql);
        }
        const canonical: Op = { op: op.op, table: t.name, row: complete ? row : defined(row) };
        if (complete) this.#lastShape.set(t.name, shapeOf(op.op, cols, cols.map((c) => codec.column(c)), sql));
        return { op: canonical, primaryKey: t.primaryKey, sql, params, mustChange: false };
      }
      case 'update': {
        const set = checkRow(op.set, `update of ${t.name}`);
        checkId(op.id, t.name);
        const cols = Object.keys(set).filter((c) => set[c] !== undefined);
        if (cols.includes(t.primaryKey)) {
          if (set[t.primaryKey] !== op.id) throw new DovetailError('primary_key_immutable', `update of ${t.name} '${op.id}' tries to change ${t.primaryKey} to ${JSON.stringify(set[t.primaryKey])}`);
        }
        const changed = cols.filter((c) => c !== t.primaryKey);
        if (changed.length === 0) throw new DovetailError('invalid_value', `update of ${t.name} '${op.id}' sets no columns`);
        const params = [...changed.map((c) => codec.encode(c, set[c])), op.id];
        const canonical: Op = { op: 'update', table: t.name, id: op.id, set: cols.length === Object.keys(set).length ? set : defined(set) };
        const key = `update|${t.name}|${changed.join(',')}`;
        let sql = this.#sql.get(key);
        if (!sql) {
          sql = `UPDATE ${q(t.name)} SET ${changed.map((c) => `${q(c)} = ?`).join(', ')} WHERE ${q(t.primaryKey)} = ?`;
          this.#sql.set(key, sql);
        }
        return { op: canonical, primaryKey: t.primaryKey, sql, params, mustChange: true };
      }
      case 'delete': {
        checkId(op.id, t.name);
        return { op: { op: 'delete', table: t.name, id: op.id }, primaryKey: t.primaryKey, sql: `DELETE FROM ${q(t.name)} WHERE ${q(t.primaryKey)} = ?`, params: [op.id], mustChange: true };
      }
    }
  }
}

function defined(values: RowValues): RowValues {
  const out: Record<string, RowValues[string]> = {};
  for (const k in values) if (values[k] !== undefined) out[k] = values[k];
  return out;
}

/** The columns of an insert or upsert, in order, with its statement. */
interface RowShape {
  readonly kind: 'insert' | 'upsert';
  readonly columns: readonly ColumnModel[];
  readonly sql: string;
  /** Whether `row` has exactly these columns, in this order, none of them undefined. */
  matches(row: RowValues): boolean;
}

function shapeOf(kind: 'insert' | 'upsert', names: readonly string[], columns: readonly ColumnModel[], sql: string): RowShape {
  return { kind, columns, sql, matches: (row) => hasKeysInOrder(row, names) };
}

function checkRow(row: unknown, what: string): RowValues {
  if (!row || typeof row !== 'object' || Array.isArray(row)) {
    throw new DovetailError('invalid_value', `${what} needs an object of column values, got ${Array.isArray(row) ? 'an array' : typeof row}`);
  }
  return row as RowValues;
}

function checkId(id: unknown, table: string): void {
  if (typeof id !== 'string' || id.length === 0) throw new DovetailError('invalid_value', `${table}: the id of the row to change must be a non-empty string, got ${typeof id}`);
}

/**
 * Runs prepared ops in order inside an open transaction. Runs of inserts with
 * the same shape go to the driver as one batch.
 */
export async function applyPrepared(tx: SqliteConnection, ops: readonly PreparedOp[]): Promise<void> {
  let i = 0;
  while (i < ops.length) {
    const first = ops[i];
    if (!first) break;
    if (!first.mustChange) {
      let j = i + 1;
      while (j < ops.length && ops[j]?.sql === first.sql) j++;
      if (j - i > 1) {
        try {
          await tx.runMany(first.sql, ops.slice(i, j).map((p) => p.params));
        } catch (error) {
          const index = (error as { batchIndex?: number }).batchIndex;
          throw explain(error, ops[i + (index ?? 0)] ?? first);
        }
        i = j;
        continue;
      }
    }
    let result;
    try {
      result = await tx.run(first.sql, first.params);
    } catch (error) {
      throw explain(error, first);
    }
    if (first.mustChange && result.changes === 0) {
      const op = first.op as Extract<Op, { id: string }>;
      throw new DovetailError('row_not_found', `${op.op} of ${op.table} '${op.id}': no such row on this device`);
    }
    i++;
  }
}

function explain(error: unknown, p: PreparedOp): unknown {
  const code = sqliteCodeOf(error);
  const msg = error instanceof Error ? error.message : String(error);
  const op = p.op;
  const id = 'id' in op ? op.id : JSON.stringify(op.row[p.primaryKey] ?? null);
  switch (code) {
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
    case 'SQLITE_CONSTRAINT_UNIQUE':
      return new DovetailError('duplicate_row', `${op.op} into ${op.table}: ${msg.replace('UNIQUE constraint failed: ', '')} already holds this value (row ${id})`, { cause: error });
    case 'SQLITE_CONSTRAINT_CHECK':
    case 'SQLITE_CONSTRAINT_NOTNULL':
    case 'SQLITE_CONSTRAINT_DATATYPE':
      return new DovetailError('constraint_violation', `${op.op} of ${op.table}: ${msg}`, { cause: error });
    default:
      return error;
  }
}
