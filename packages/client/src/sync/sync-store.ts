import { quoteIdent as q } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import type { MutationResult, Op, PullResponse, PushMutation, RefreshKey } from '@dovetail/protocol';
import { sqliteCodeOf } from '../driver.js';
import type { SqliteConnection, SqlValue } from '../driver.js';
import { META, MetaKey, OUTBOX, REJECTED, readMeta, writeMeta } from '../engine-tables.js';
import type { SerialConnection } from '../serial-connection.js';
import { applyPrepared } from '../write/apply-ops.js';
import type { OpCompiler } from '../write/apply-ops.js';
import { findViolations, tablesToCheck } from '../write/diagnose.js';
import { ForeignKeyViolation } from '../errors.js';
import { decodeOps } from '../outbox/ops-codec.js';
import { PulledChanges } from './pulled-changes.js';

/** A mutation the server refused, kept for the app (G5). */
export interface RejectedMutation {
  readonly id: string;
  readonly name: string;
  readonly ops: readonly Op[];
  readonly reason: string;
  readonly message: string;
  /** The rows its ops touched, as `table:id`. */
  readonly rows: readonly string[];
  readonly createdAt: number;
  readonly rejectedAt: number;
}

/**
 * The outbox gained rows the pull did not refresh (a write made while the
 * pull was on its way): the pull is not applied, and is made again.
 */
export class StaleRefresh extends Error {
  override readonly name = 'StaleRefresh';
}

export interface ApplyPullResult {
  /** Tables whose rows changed. */
  readonly tables: ReadonlySet<string>;
  /** Outbox entries that left because the pulled state contains them. */
  readonly finalized: number;
  /** Pending mutations that no longer apply on top of the server's state (kept for the server to judge). */
  readonly skipped: readonly string[];
}

interface OutboxRow {
  [k: string]: SqlValue;
  seq: number;
  id: string;
  name: string;
  ops: string;
  result: string | null;
  created_at: number;
}

const rowKey = (op: Op, schema: Schema): string => {
  const id = op.op === 'insert' || op.op === 'upsert' ? op.row[schema.table(op.table).primaryKey] : op.id;
  return `${op.table}:${typeof id === 'string' ? id : JSON.stringify(id)}`;
};

/** The rows an op touches, as (table, id); deletes reach the rows below them too. */
function touchedRow(op: Op, schema: Schema): { table: string; id: string; deep: boolean } | undefined {
  if (!schema.hasTable(op.table)) return undefined;
  const id = op.op === 'insert' || op.op === 'upsert' ? op.row[schema.table(op.table).primaryKey] : op.id;
  return typeof id === 'string' ? { table: op.table, id, deep: op.op === 'delete' } : undefined;
}

/**
 * The SQLite side of sync: what to push, recording results, and applying a
 * pull in one transaction with its cursor, pending mutations replayed on
 * top, and the outbox entries it contains finalized.
 */
export class SyncStore {
  readonly #conn: SerialConnection;
  readonly #schema: Schema;
  readonly #compiler: OpCompiler;
  readonly #now: () => number;
  readonly #changes: PulledChanges;

  constructor(conn: SerialConnection, schema: Schema, compiler: OpCompiler, now: () => number) {
    this.#conn = conn;
    this.#schema = schema;
    this.#compiler = compiler;
    this.#now = now;
    this.#changes = new PulledChanges(schema, compiler);
  }

  async cursor(): Promise<string | null> {
    return this.#conn.exclusive(async (c) => {
      if ((await readMeta(c, MetaKey.NeedsReset)) === '1') return null;
      return (await readMeta(c, MetaKey.Cursor)) ?? null;
    });
  }

  /**
   * The next mutations to push, oldest first, each with `prev` (the entry
   * before it in the outbox), and marked as sent so normalization leaves
   * them alone from now on.
   */
  async nextToPush(limit: number): Promise<PushMutation[]> {
    return this.#conn.transaction(async (tx) => {
      const rows = await tx.all<OutboxRow>(`SELECT seq, id, name, ops, result, created_at FROM ${OUTBOX} ORDER BY seq`);
      const out: PushMutation[] = [];
      let prev: string | null = null;
      for (const r of rows) {
        if (r.result === null && out.length < limit) out.push({ id: r.id, name: r.name, ops: decodeOps(r.ops), prev });
        prev = r.id;
      }
      if (out.length > 0) await tx.run(`UPDATE ${OUTBOX} SET sent = 1 WHERE id IN (${out.map(() => '?').join(',')})`, out.map((m) => m.id));
      return out;
    });
  }

  /** Records push results: applied ones wait for the pull that contains them; refused ones move to the rejected log. */
  async recordResults(results: readonly MutationResult[]): Promise<RejectedMutation[]> {
    if (results.length === 0) return [];
    const now = this.#now();
    return this.#conn.transaction(async (tx) => {
      const rejected: RejectedMutation[] = [];
      // Applied ones in batches (one statement per batch rather than per mutation).
      const applied = results.filter((r) => r.status === 'applied').map((r) => r.id);
      for (let from = 0; from < applied.length; from += APPLIED_BATCH) {
        const ids = applied.slice(from, from + APPLIED_BATCH);
        await tx.run(`UPDATE ${OUTBOX} SET result = 'applied' WHERE id IN (${ids.map(() => '?').join(', ')})`, ids);
      }
      for (const r of results) {
        if (r.status === 'applied') continue;
        const rows = await tx.all<OutboxRow>(`SELECT seq, id, name, ops, result, created_at FROM ${OUTBOX} WHERE id = ?`, [r.id]);
        const entry = rows[0];
        if (!entry) continue;
        const ops = decodeOps(entry.ops);
        const touched = [...new Set(ops.map((op) => rowKey(op, this.#schema)))];
        await tx.run(`INSERT INTO ${REJECTED} (outbox_seq, id, name, ops, reason, message, rows, created_at, rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, [
          entry.seq,
          entry.id,
          entry.name,
          entry.ops,
          r.reason,
          r.message,
          JSON.stringify(touched),
          entry.created_at,
          now,
        ]);
        await tx.run(`DELETE FROM ${OUTBOX} WHERE id = ?`, [r.id]);
        rejected.push({ id: entry.id, name: entry.name, ops, reason: r.reason, message: r.message, rows: touched, createdAt: entry.created_at, rejectedAt: now });
      }
      return rejected;
    });
  }

  /** Moves one mutation to the rejected log without the server (e.g. too large to send at all). */
  async rejectLocally(id: string, reason: string, message: string): Promise<RejectedMutation[]> {
    return this.recordResults([{ id, status: 'rejected', reason: reason as never, message }]);
  }

  /** Rows whose server version the next pull must bring: all the outbox touches, and what refused mutations touched. */
  async refreshKeys(): Promise<RefreshKey[]> {
    return this.#conn.exclusive(async (c) => {
      const keys = new Map<string, RefreshKey>();
      const add = (table: string, id: string, deep: boolean): void => {
        const k = `${table}:${id}`;
        const had = keys.get(k);
        keys.set(k, { table, id, ...(deep || had?.deep ? { deep: true } : {}) });
      };
      const outbox = await c.all<{ ops: string }>(`SELECT ops FROM ${OUTBOX}`);
      const rejected = await c.all<{ ops: string }>(`SELECT ops FROM ${REJECTED} WHERE needs_refresh = 1`);
      for (const { ops } of [...outbox, ...rejected]) {
        for (const op of decodeOps(ops)) {
          const row = touchedRow(op, this.#schema);
          if (row) add(row.table, row.id, row.deep);
        }
      }
      return [...keys.values()];
    });
  }

  /**
   * Applies a pull in one transaction: (on reset) clear the synced tables;
   * the changes, parents first; finalize the outbox entries the pulled state
   * contains; replay the remaining ones on top; the cursor. Keys are checked
   * at COMMIT; a pending mutation that no longer fits the server's state is
   * left out locally (and stays in the outbox for the server to judge).
   */
  async applyPull(response: PullResponse, refreshed: readonly RefreshKey[]): Promise<ApplyPullResult> {
    const tables = new Set<string>();
    const result = await this.#conn.transaction(
      async (tx) => {
        // A reset brings back every row, whatever was asked.
        if (!response.reset) await this.#checkRefreshed(tx, refreshed);
        if (response.reset) {
          for (const t of [...this.#schema.syncedTables].reverse()) {
            await tx.run(`DELETE FROM ${q(t.name)}`);
            tables.add(t.name);
          }
        }
        await this.#changes.apply(tx, response.changes, tables, response.reset);
        const finalized = await this.#finalize(tx, response.lastMutationId);
        const skipped = await this.#replay(tx, response.lastMutationId, tables);
        await writeMeta(tx, MetaKey.Cursor, response.cursor);
        await writeMeta(tx, MetaKey.LastPullAt, String(this.#now()));
        await tx.run(`DELETE FROM ${META} WHERE key = ?`, [MetaKey.NeedsReset]);
        if (refreshed.length > 0 || response.reset) await tx.run(`UPDATE ${REJECTED} SET needs_refresh = 0 WHERE needs_refresh = 1`);
        return { finalized, skipped };
      },
      async (tx, error) => {
        if (sqliteCodeOf(error) !== 'SQLITE_CONSTRAINT_FOREIGNKEY') return error;
        const violations = await findViolations(tx, this.#schema, this.#schema.syncedTables.map((t) => t.name));
        return violations.length > 0 ? new ForeignKeyViolation(violations) : error;
      },
    ).catch(async (error: unknown) => {
      if (error instanceof StaleRefresh) throw error;
      // The pulled state would break a key here: start over with a full
      // resync next time rather than retrying the same batch forever.
      await this.#conn.exclusive((c) => writeMeta(c, MetaKey.NeedsReset, '1')).catch(() => undefined);
      throw error;
    });
    return { tables, ...result };
  }

  /** Every row the outbox touches now must have come back from the server. */
  async #checkRefreshed(tx: SqliteConnection, refreshed: readonly RefreshKey[]): Promise<void> {
    const asked = new Set(refreshed.map((k) => `${k.table}:${k.id}:${k.deep ? 'deep' : ''}`));
    const has = (table: string, id: string, deep: boolean): boolean => asked.has(`${table}:${id}:deep`) || (!deep && asked.has(`${table}:${id}:`));
    const outbox = await tx.all<{ ops: string }>(`SELECT ops FROM ${OUTBOX}`);
    for (const { ops } of outbox) {
      for (const op of decodeOps(ops)) {
        const row = touchedRow(op, this.#schema);
        if (row && !has(row.table, row.id, row.deep)) throw new StaleRefresh('a local write arrived while the pull was on its way');
      }
    }
  }

  /** Entries at or before the last mutation the pulled state contains, and known applied, leave the outbox. */
  async #finalize(tx: SqliteConnection, lastMutationId: string | null): Promise<number> {
    const upTo = await this.#positionOf(tx, lastMutationId);
    if (upTo === undefined) return 0;
    const res = await tx.run(`DELETE FROM ${OUTBOX} WHERE seq <= ? AND result = 'applied'`, [upTo]);
    return res.changes;
  }

  async #positionOf(tx: SqliteConnection, id: string | null): Promise<number | undefined> {
    if (id === null) return undefined;
    const inOutbox = await tx.all<{ seq: number }>(`SELECT seq FROM ${OUTBOX} WHERE id = ?`, [id]);
    if (inOutbox[0]) return inOutbox[0].seq;
    const inRejected = await tx.all<{ outbox_seq: number }>(`SELECT outbox_seq FROM ${REJECTED} WHERE id = ?`, [id]);
    return inRejected[0]?.outbox_seq;
  }

  /**
   * Replays pending mutations the pulled state does not contain yet, so the
   * user's own changes never flicker away. Entries the server has already
   * processed (at or before `lastMutationId`) are not replayed: their
   * effects, if any, are in the pulled state.
   */
  async #replay(tx: SqliteConnection, lastMutationId: string | null, tables: Set<string>): Promise<string[]> {
    const after = (await this.#positionOf(tx, lastMutationId)) ?? 0;
    const entries = await tx.all<OutboxRow>(`SELECT seq, id, name, ops, result, created_at FROM ${OUTBOX} WHERE seq > ? ORDER BY seq`, [after]);
    if (entries.length === 0) return [];
    const parsed = entries.map((e) => ({ id: e.id, ops: decodeOps(e.ops) }));
    const touched = new Set(parsed.flatMap((e) => e.ops.map((o) => o.table)));
    for (const t of touched) tables.add(t);
    // Fast path: everything replays and every key holds.
    await tx.exec('SAVEPOINT replay_all');
    let ok = true;
    for (const e of parsed) {
      if (!(await this.#replayOne(tx, e.ops))) {
        ok = false;
        break;
      }
    }
    if (ok && (await findViolations(tx, this.#schema, tablesToCheck(this.#schema, touched))).length === 0) {
      await tx.exec('RELEASE replay_all');
      return [];
    }
    await tx.exec('ROLLBACK TO replay_all');
    await tx.exec('RELEASE replay_all');
    // Slow path: one at a time, leaving out those that no longer fit.
    const skipped: string[] = [];
    for (const e of parsed) {
      await tx.exec('SAVEPOINT replay_one');
      const fits = (await this.#replayOne(tx, e.ops)) && (await findViolations(tx, this.#schema, tablesToCheck(this.#schema, new Set(e.ops.map((o) => o.table))))).length === 0;
      if (fits) await tx.exec('RELEASE replay_one');
      else {
        await tx.exec('ROLLBACK TO replay_one');
        await tx.exec('RELEASE replay_one');
        skipped.push(e.id);
      }
    }
    return skipped;
  }

  async #replayOne(tx: SqliteConnection, ops: readonly Op[]): Promise<boolean> {
    try {
      await applyPrepared(
        tx,
        ops.map((op) => this.#compiler.prepare(op)),
      );
      return true;
    } catch {
      return false;
    }
  }

  async rejected(): Promise<RejectedMutation[]> {
    const rows = await this.#conn.all<{ id: string; name: string; ops: string; reason: string; message: string; rows: string; created_at: number; rejected_at: number }>(
      `SELECT id, name, ops, reason, message, rows, created_at, rejected_at FROM ${REJECTED} ORDER BY outbox_seq`,
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      ops: decodeOps(r.ops),
      reason: r.reason,
      message: r.message,
      rows: JSON.parse(r.rows) as string[],
      createdAt: r.created_at,
      rejectedAt: r.rejected_at,
    }));
  }
}

/** Ids per statement when marking applied mutations (well under SQLite's limit on parameters). */
const APPLIED_BATCH = 500;
