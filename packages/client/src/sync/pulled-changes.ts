import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, Schema, TableModel } from '@dovetail/schema';
import type { Change, RowValues } from '@dovetail/protocol';
import { sqliteCodeOf, SqliteDriverError } from '../driver.js';
import type { SqliteConnection, SqlValue } from '../driver.js';
import type { OpCompiler } from '../write/apply-ops.js';
import type { TableCodec } from '../write/codec.js';
import { hasKeysInOrder } from '../write/row-keys.js';
import { parkUniqueConflicts } from './unique-conflicts.js';

/**
 * Writes a pull's changes into the device's tables, inside the transaction
 * that applies the pull (sync-store.ts), with the statement for each shape
 * of pulled row made once.
 */
export class PulledChanges {
  readonly #schema: Schema;
  readonly #compiler: OpCompiler;

  constructor(schema: Schema, compiler: OpCompiler) {
    this.#schema = schema;
    this.#compiler = compiler;
  }

  /**
   * Applies changes in order; runs of the same statement go to the driver
   * as one batch. A row whose unique value is still held by a row later in
   * the batch parks that row first (see unique-conflicts.ts).
   *
   * After a reset the synced tables are empty, so rows are inserted plainly
   * (an upsert costs SQLite about a quarter more); should a row come twice,
   * its batch goes on as upserts from there.
   */
  async apply(tx: SqliteConnection, changes: readonly Change[], tables: Set<string>, empty: boolean): Promise<void> {
    let lastIndex: Map<string, number> | undefined;
    const comesAfter = (at: number) => (table: string, id: string): boolean => {
      lastIndex ??= new Map(changes.map((c, i) => [`${c.table}\u0000${c.op === 'delete' ? c.id : pulledKey(c.row[this.#schema.table(c.table).primaryKey])}`, i]));
      return (lastIndex.get(`${table}\u0000${id}`) ?? -1) > at;
    };
    let sql: string | undefined;
    /** For a plain INSERT into an emptied table: the upsert of the same shape, should a row come twice. */
    let fallback: string | undefined;
    let batch: SqlValue[][] = [];
    let positions: number[] = [];
    const flush = async (): Promise<void> => {
      let from = 0;
      while (sql !== undefined && from < batch.length) {
        try {
          await tx.runMany(sql, from === 0 ? batch : batch.slice(from));
          break;
        } catch (error) {
          const failed = from + (error instanceof SqliteDriverError ? (error.batchIndex ?? -1) : -1);
          const change = changes[positions[failed] ?? -1];
          if (sqliteCodeOf(error) === 'SQLITE_CONSTRAINT_PRIMARYKEY' && fallback !== undefined && failed >= from) {
            sql = fallback;
            fallback = undefined;
            from = failed;
            continue;
          }
          if (sqliteCodeOf(error) !== 'SQLITE_CONSTRAINT_UNIQUE' || failed < from || !change || change.op === 'delete') throw error;
          const t = this.#schema.table(change.table);
          const codec = this.#compiler.codec(t.name);
          const row = Object.fromEntries(Object.keys(change.row).filter((c) => codec.columns.has(c)).map((c) => [c, codec.encode(c, change.row[c])]));
          await parkUniqueConflicts(tx, t, row, comesAfter(positions[failed] ?? -1));
          from = failed;
        }
      }
      sql = undefined;
      fallback = undefined;
      batch = [];
      positions = [];
    };
    for (const [index, change] of changes.entries()) {
      if (!this.#schema.hasTable(change.table)) continue;
      const t = this.#schema.table(change.table);
      if (t.visibility.kind === 'none') continue;
      tables.add(t.name);
      let next: string;
      let nextFallback: string | undefined;
      let params: SqlValue[];
      if (change.op === 'delete') {
        next = `DELETE FROM ${q(t.name)} WHERE ${q(t.primaryKey)} = ?`;
        params = [change.id];
      } else {
        const shape = this.#shapeOf(t, change.row);
        next = empty ? shape.insertSql : shape.sql;
        nextFallback = empty ? shape.sql : undefined;
        params = new Array<SqlValue>(shape.cols.length);
        for (let i = 0; i < shape.cols.length; i++) {
          const c = shape.columns[i] as ColumnModel;
          params[i] = shape.codec.encodeAs(c, change.row[c.name]);
        }
      }
      if (next !== sql) await flush();
      sql = next;
      fallback = nextFallback;
      batch.push(params);
      positions.push(index);
    }
    await flush();
  }

  /** The last row shape seen per table: pulled rows of a table nearly always carry the same columns, in the same order. */
  readonly #shapes = new Map<string, UpsertShape>();

  /** The upsert statement for a pulled row, by the columns it carries that the device knows (others are ignored). */
  #shapeOf(t: TableModel, row: RowValues): UpsertShape {
    const last = this.#shapes.get(t.name);
    if (last && hasKeysInOrder(row, last.keys)) return last;
    const codec = this.#compiler.codec(t.name);
    const keys = Object.keys(row);
    const cols = keys.filter((c) => codec.columns.has(c));
    const set = cols.filter((c) => c !== t.primaryKey);
    const insertSql = `INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    const sql = `${insertSql} ${set.length ? `ON CONFLICT (${q(t.primaryKey)}) DO UPDATE SET ${set.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : `ON CONFLICT (${q(t.primaryKey)}) DO NOTHING`}`;
    const shape = { keys, cols, columns: cols.map((c) => codec.column(c)), sql, insertSql, codec };
    this.#shapes.set(t.name, shape);
    return shape;
  }
}

/** A primary key value as pulled (always text in practice; anything else gets its JSON). */
function pulledKey(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

interface UpsertShape {
  /** The row's keys, in order, as they came. */
  readonly keys: readonly string[];
  /** Those the device's schema has. */
  readonly cols: readonly string[];
  readonly columns: readonly ColumnModel[];
  /** Inserts, or updates a row already there. */
  readonly sql: string;
  /** Inserts only: for a table known to be empty. */
  readonly insertSql: string;
  readonly codec: TableCodec;
}
