import type { Sql } from './sql.js';

/**
 * Drops change entries older than `retentionMs` and remembers the newest
 * transaction it dropped, so a device whose cursor is older is told to
 * resync (`cursor_expired`) instead of missing deletions (G8).
 */
export async function pruneChanges(sql: Sql, retentionMs: number): Promise<number> {
  return sql.transaction(async (tx) => {
    const rows = await tx.query<{ n: string; max: string | null }>(
      `WITH gone AS (DELETE FROM _dovetail_changes WHERE at < now() - make_interval(secs => $1) RETURNING xid)
       SELECT count(*)::text AS n, max(xid::text::numeric)::text AS max FROM gone`,
      [retentionMs / 1000],
    );
    const max = rows[0]?.max;
    if (max) {
      await tx.query(
        `INSERT INTO _dovetail_meta (key, value) VALUES ('pruned_xid', $1)
         ON CONFLICT (key) DO UPDATE SET value = GREATEST(_dovetail_meta.value::numeric, EXCLUDED.value::numeric)::text`,
        [max],
      );
    }
    return Number(rows[0]?.n ?? 0);
  });
}
