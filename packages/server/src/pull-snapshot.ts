import type { Identity } from './auth.js';
import { admissionColumns, admit, clientOfAnotherUser } from './identity.js';
import type { IdentityRow } from './identity.js';
import type { Schema } from '@dovetail/schema';
import { scriptLiteral as lit } from './sql.js';
import type { Sql, SqlSession } from './sql.js';

/**
 * The cursor is the Postgres snapshot the last pull read (`xmin:xmax:xip`).
 * A pull returns every row written by a transaction visible now but not in
 * that snapshot, read in one REPEATABLE READ snapshot: so a transaction that
 * commits late is never skipped (it was in progress, hence invisible, in the
 * old snapshot), and the rows sent are a consistent, key-closed state.
 */
const CURSOR_PREFIX = 'v1.';

export function encodeCursor(snapshot: string): string {
  return CURSOR_PREFIX + Buffer.from(snapshot, 'utf8').toString('base64url');
}

/** The Postgres snapshot (`xmin:xmax:xip`) a cursor holds, or undefined when it is not one this server issues. */
export function cursorSnapshot(cursor: string): string | undefined {
  const snapshot = cursor.startsWith(CURSOR_PREFIX) ? Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8') : '';
  return /^\d+:\d+:(\d+(,\d+)*)?$/.test(snapshot) ? snapshot : undefined;
}

export interface OpenedSnapshot {
  /** The next cursor: the snapshot this pull reads. */
  readonly cursor: string;
  /** The last mutation of this client that the snapshot holds. */
  readonly lastMutationId: string | null;
  /** The rows of the statements the caller added, in order. */
  readonly results: Record<string, unknown>[][];
}

export interface SnapshotDeps {
  readonly sql: Sql;
  readonly schema: Schema;
  readonly identityRow: IdentityRow;
}

/**
 * Runs `read` in a session whose REPEATABLE READ snapshot is open, opened
 * in one script with `statements` (their rows in `results`) and with what
 * admits the request: whether the user's identity row exists and who owns
 * the client id. Most pulls come from users and devices the server knows,
 * so they cost no round trip of their own for it. A client id of another
 * user is `forbidden` (I1). A user without an identity row gets one from
 * the token's claims before the snapshot is opened again, so the pull
 * includes it (G14). The caller's `read` ends the transaction.
 */
export async function withPullSnapshot<T>(
  deps: SnapshotDeps,
  identity: Identity,
  clientId: string,
  statements: readonly string[],
  read: (s: SqlSession, opened: OpenedSnapshot) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await deps.sql.session(async (s): Promise<{ value: T } | undefined> => {
      const { admitted, opened } = await openSnapshot(s, deps, identity.userId, clientId, statements);
      if (admitted.owner !== null && admitted.owner !== identity.userId) throw clientOfAnotherUser();
      if (!admitted.known && attempt === 1) {
        await s.script('ROLLBACK');
        return undefined;
      }
      return { value: await read(s, opened) };
    });
    if (outcome) return outcome.value;
    // Outside the session: on embedded PGlite the session holds the one connection.
    await admit(deps.sql, deps.schema, identity, deps.identityRow, clientId, 'pull');
  }
}

async function openSnapshot(
  s: SqlSession,
  deps: SnapshotDeps,
  userId: string,
  clientId: string,
  statements: readonly string[],
): Promise<{ admitted: { known: boolean; owner: string | null }; opened: OpenedSnapshot }> {
  const results = await s.script(
    [
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
      // The visibility subqueries make the planner's estimates large enough
      // to trigger JIT compilation, which costs more than the queries.
      deps.sql.kind === 'postgres' ? 'SET LOCAL jit = off' : 'SELECT 1',
      // Rows read through a cursor are all read: plan for the whole result,
      // not (as by default) for its first tenth.
      'SET LOCAL cursor_tuple_fraction = 1.0',
      `SELECT pg_current_snapshot()::text AS s, ${admissionColumns(deps.schema, lit(userId), lit(clientId))}`,
      `SELECT last_mutation AS mutation_id FROM _dovetail_clients WHERE client_id = ${lit(clientId)}`,
      ...statements,
    ].join(';\n'),
  );
  const head = results[3]?.[0];
  const snap = head?.['s'];
  const last = results[4]?.[0]?.['mutation_id'];
  const owner = head?.['owner'];
  return {
    admitted: { known: head?.['known'] === true, owner: typeof owner === 'string' ? owner : null },
    opened: { cursor: encodeCursor(typeof snap === 'string' ? snap : ''), lastMutationId: typeof last === 'string' ? last : null, results: results.slice(5) },
  };
}
