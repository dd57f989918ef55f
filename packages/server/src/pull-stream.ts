import type { Identity } from './auth.js';
import { upserts, visibleRowsSql } from './pull.js';
import { withPullSnapshot } from './pull-snapshot.js';
import type { PullDeps } from './pull.js';
import { scriptLiteral as lit } from './sql.js';

/** Rows fetched (and written out) at a time by a streamed first sync. */
export const STREAM_CHUNK_ROWS = 10_000;

/** Where a streamed pull goes: resolves when the text may be written again (backpressure). */
export type PullSink = (text: string) => Promise<void>;

/**
 * A first sync (cursor null) streamed as it is read, so the server holds
 * one chunk of rows at a time however large the user's data: the same
 * JSON a `pull` returns, written in pieces. One REPEATABLE READ snapshot
 * covers it all, read through a Postgres cursor per table, tables parents
 * first. A table with keys to itself is read whole and ordered parents
 * first, as in every pull.
 *
 * Refresh keys need nothing here: the device clears its synced tables
 * before applying a reset, and every row it may see is in the stream.
 *
 * Once the first piece is written the answer is committed to `200`: a
 * failure after that must cut the connection (the caller's job), so the
 * device sees a broken response, never a short one that parses.
 */
export async function streamFirstSync(deps: PullDeps, identity: Identity, clientId: string, write: PullSink, chunkRows = STREAM_CHUNK_ROWS): Promise<void> {
  await withPullSnapshot(deps, identity, clientId, [], async (s, opened) => {
    const head = { cursor: opened.cursor, reset: true, hasMore: false, lastMutationId: opened.lastMutationId };
    await write(`${JSON.stringify(head).slice(0, -1)},"changes":[`);
    let first = true;
    const emit = async (changes: readonly unknown[]): Promise<void> => {
      if (changes.length === 0) return;
      const text = JSON.stringify(changes).slice(1, -1);
      await write(first ? text : `,${text}`);
      first = false;
    };
    for (const t of deps.schema.syncedTables) {
      const select = visibleRowsSql(deps.schema, t, lit(identity.userId));
      if (t.selfReferencing) {
        await emit(upserts(t, await s.query(select)));
        continue;
      }
      await s.query(`DECLARE dovetail_rows NO SCROLL CURSOR FOR ${select}`);
      for (;;) {
        const rows = await s.query(`FETCH ${chunkRows} FROM dovetail_rows`);
        await emit(upserts(t, rows));
        if (rows.length < chunkRows) break;
      }
      await s.query('CLOSE dovetail_rows');
    }
    await s.script('COMMIT');
    await write(']}');
  });
}
