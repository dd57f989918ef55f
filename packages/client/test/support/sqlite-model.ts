import Sqlite from 'better-sqlite3';
import { quoteIdent as q } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import type { Op } from '@dovetail/protocol';

/**
 * A model of the server's row semantics: an in-memory SQLite database with
 * the schema's keys (deferred, with the declared cascades), applying each
 * mutation in one transaction. Used to compare op sequences by their
 * effect. Values are stored as given (booleans as 0/1).
 */
export class SqliteModel {
  readonly #db: Sqlite.Database;
  readonly #schema: Schema;

  constructor(schema: Schema) {
    this.#schema = schema;
    this.#db = new Sqlite(':memory:');
    this.#db.pragma('foreign_keys = ON');
    for (const sql of schema.sqliteDdl()) this.#db.exec(sql);
  }

  /** Applies one mutation atomically; returns false (and changes nothing) if it fails. */
  apply(ops: readonly Op[]): boolean {
    this.#db.exec('BEGIN');
    try {
      for (const op of ops) this.#applyOp(op);
      this.#db.exec('COMMIT');
      return true;
    } catch {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      return false;
    }
  }

  #applyOp(op: Op): void {
    const t = this.#schema.table(op.table);
    const enc = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);
    switch (op.op) {
      case 'insert':
      case 'upsert': {
        const cols = Object.keys(op.row);
        const set = cols.filter((c) => c !== t.primaryKey);
        let sql = `INSERT INTO ${q(t.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
        if (op.op === 'upsert') {
          sql += set.length ? ` ON CONFLICT (${q(t.primaryKey)}) DO UPDATE SET ${set.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : ' ON CONFLICT DO NOTHING';
        }
        this.#db.prepare(sql).run(...cols.map((c) => enc(op.row[c])));
        return;
      }
      case 'update': {
        const cols = Object.keys(op.set);
        const r = this.#db.prepare(`UPDATE ${q(t.name)} SET ${cols.map((c) => `${q(c)} = ?`).join(', ')} WHERE ${q(t.primaryKey)} = ?`).run(...cols.map((c) => enc(op.set[c])), op.id);
        if (r.changes !== 1) throw new Error(`update of missing ${op.table} ${op.id}`);
        return;
      }
      case 'delete': {
        const r = this.#db.prepare(`DELETE FROM ${q(t.name)} WHERE ${q(t.primaryKey)} = ?`).run(op.id);
        if (r.changes !== 1) throw new Error(`delete of missing ${op.table} ${op.id}`);
        return;
      }
    }
  }

  /** Every row of every table, in a stable order. */
  dump(): Record<string, unknown[]> {
    const out: Record<string, unknown[]> = {};
    for (const t of this.#schema.tables) out[t.name] = this.#db.prepare(`SELECT * FROM ${q(t.name)} ORDER BY ${q(t.primaryKey)}`).all();
    return out;
  }

  close(): void {
    this.#db.close();
  }
}
