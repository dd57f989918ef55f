import { emptyAnnounced, noteChange } from './audience.js';
import type { Announced } from './audience.js';
import { scriptLiteral as lit } from './sql.js';
import type { Sql } from './sql.js';

/** Rows read one by one per read; past this, a read names the changed tables only. */
export const FEED_ROWS = 1000;

/**
 * The changes committed since the last read, for the poke service, in
 * commit order: like a pull's cursor, the feed keeps the Postgres snapshot
 * it last read (`xmin:xmax:xip`) and reads the change-log entries of every
 * transaction visible now but not then, so a transaction that commits late
 * is never skipped.
 */
export class ChangeFeed {
  readonly #sql: Sql;
  #snapshot: string;

  private constructor(sql: Sql, snapshot: string) {
    this.#sql = sql;
    this.#snapshot = snapshot;
  }

  /** A feed that starts now: what committed before is not read. */
  static async open(sql: Sql): Promise<ChangeFeed> {
    return new ChangeFeed(sql, await currentSnapshot(sql));
  }

  /** Moves past everything committed so far without reading it (no one is listening). */
  async skip(): Promise<void> {
    this.#snapshot = await currentSnapshot(this.#sql);
  }

  /**
   * What committed since the last read: each row as inserted (judged by
   * its current row) or as updated or deleted (judged by its previous image
   * too), or, past FEED_ROWS rows, whole tables; and which devices' pushes
   * wrote them. The feed moves on only when the read succeeds.
   */
  async read(): Promise<Announced> {
    const prev = lit(this.#snapshot);
    const since = `xid >= pg_snapshot_xmin(${prev}::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, ${prev}::pg_snapshot)`;
    // One round trip: the snapshot, its rows (one more than are read one by
    // one, to know when there are too many), the tables written, and COMMIT.
    const [, snap, rows, tables] = await this.#sql.session((s) =>
      s.script(
        [
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
          'SELECT pg_current_snapshot()::text AS s',
          `SELECT tbl, row_id, old_row IS NOT NULL AS had, client_id FROM _dovetail_changes WHERE ${since} LIMIT ${FEED_ROWS + 1}`,
          `SELECT DISTINCT tbl FROM _dovetail_changes WHERE ${since}`,
          'COMMIT',
        ].join(';\n'),
      ),
    );
    const announced = emptyAnnounced();
    const found = (rows ?? []) as unknown as { tbl: string; row_id: string; had: boolean; client_id: string | null }[];
    if (found.length > FEED_ROWS) {
      for (const t of (tables ?? []) as unknown as { tbl: string }[]) announced.whole.add(t.tbl);
      announced.writers.add(null);
    } else {
      for (const r of found) {
        noteChange(announced, r.tbl, r.row_id, r.had ? 'updated' : 'inserted');
        announced.writers.add(r.client_id);
      }
    }
    this.#snapshot = String(snap?.[0]?.['s']);
    return announced;
  }
}

async function currentSnapshot(sql: Sql): Promise<string> {
  const rows = await sql.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s');
  return String(rows[0]?.s);
}
