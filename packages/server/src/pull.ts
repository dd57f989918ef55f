import { quoteIdent as q, quoteLiteral } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import type { RefreshKey, RowValues } from '@dovetail/protocol';
import type { Identity } from './auth.js';
import { ServerError } from './errors.js';
import type { IdentityRow } from './identity.js';
import { cursorSnapshot, withPullSnapshot } from './pull-snapshot.js';
import { scriptLiteral as lit } from './sql.js';
import type { Sql, SqlQueryable, SqlSession } from './sql.js';
import { membershipExpansion, movedExpansion } from './expansion.js';
import type { ChangedRow } from './expansion.js';
import { deletedRowCondition, visibleCondition } from './visibility.js';

export type Change = { readonly op: 'upsert'; readonly table: string; readonly row: RowValues } | { readonly op: 'delete'; readonly table: string; readonly id: string };

export interface PullResult {
  readonly cursor: string;
  readonly reset: boolean;
  readonly changes: Change[];
  readonly hasMore: boolean;
  readonly lastMutationId: string | null;
}

export interface PullDeps {
  readonly sql: Sql;
  readonly schema: Schema;
  readonly identityRow: IdentityRow;
}

export function decodeCursor(cursor: string): string {
  const snapshot = cursorSnapshot(cursor);
  if (snapshot === undefined) {
    throw new ServerError('cursor_expired', 'the cursor is not one this server issued (another deployment, or damaged); pull again with cursor null to resync');
  }
  return snapshot;
}

/** The user's changes since `cursor` (everything visible when it is null), plus the rows asked for in `refresh`. */
export async function pull(deps: PullDeps, identity: Identity, clientId: string, cursor: string | null, refresh: readonly RefreshKey[] = []): Promise<PullResult> {
  const prev = cursor === null ? null : decodeCursor(cursor);
  // One REPEATABLE READ snapshot for everything read, opened together with
  // the retention check and the changes since the cursor. The snapshot text
  // was checked by decodeCursor (digits, colons and commas only).
  const at = lit(prev ?? '');
  const statements = [
    // Expired: older than the retention. Ahead: from further along than this
    // database has got (it was restored from a backup, or rebuilt from a
    // dump, since the cursor was issued), where it would skip transactions.
    prev === null
      ? 'SELECT 1'
      : `SELECT (SELECT value::xid8 >= pg_snapshot_xmin(${at}::pg_snapshot) FROM _dovetail_meta WHERE key = 'pruned_xid') AS expired,
                pg_snapshot_xmax(${at}::pg_snapshot) > pg_snapshot_xmax(pg_current_snapshot()) AS ahead`,
    // The rows a pull must look at one by one: those with earlier values
    // (updates and deletes: possible deletes for this user, moved
    // subtrees) and membership rows; and, per table written, the ids of
    // all its rows written (see since). The window is read once; only
    // the rows looked at one by one are sorted.
    prev === null ? 'SELECT 1' : changedRowsSql(at, membershipTablesSql(deps.schema)),
  ];
  return withPullSnapshot(deps, identity, clientId, statements, async (s, opened) => {
    if (opened.results[0]?.[0]?.['expired'] === true) {
      throw new ServerError('cursor_expired', 'this device has been away longer than the server keeps deletions; pull with cursor null to resync');
    }
    if (opened.results[0]?.[0]?.['ahead'] === true) {
      throw new ServerError('cursor_expired', "the cursor is from further along than this server's database has got (restored from a backup since?); pull with cursor null to resync");
    }
    // Without refresh keys, what ends the snapshot may travel with the last reads.
    const found =
      prev === null
        ? { changes: await everything(s, deps.schema, identity.userId), committed: false }
        : await since(s, deps.schema, identity.userId, prev, (opened.results[1] ?? []) as unknown as WindowRow[], refresh.length === 0);
    const changes = refresh.length === 0 ? found.changes : arrange(deps.schema, [...found.changes, ...(await refreshed(s, deps.schema, identity.userId, refresh))]);
    if (!found.committed) await s.script('COMMIT');
    return { cursor: opened.cursor, reset: prev === null, changes, hasMore: false, lastMutationId: opened.lastMutationId };
  });
}

/** Every row of `t` the user may see, parents first by id order (a whole table: the bulk form of the visibility check). */
export function visibleRowsSql(schema: Schema, t: TableModel, user: string): string {
  return `SELECT r.* FROM ${q(t.name)} r WHERE ${visibleCondition(schema, t, 'r', user, { bulk: true })} ORDER BY r.${q(t.primaryKey)}`;
}

async function everything(tx: SqlQueryable, schema: Schema, userId: string): Promise<Change[]> {
  const out: Change[] = [];
  for (const t of schema.syncedTables) {
    const rows = await tx.query(visibleRowsSql(schema, t, '$1'), [userId]);
    out.push(...upserts(t, rows));
  }
  return out;
}

/** Change-log entries of transactions committed since the cursor's snapshot (`snapshot`: a SQL expression of its text). */
function sinceCursor(snapshot: string, xid = 'xid'): string {
  return `${xid} >= pg_snapshot_xmin(${snapshot}::pg_snapshot) AND NOT pg_visible_in_snapshot(${xid}, ${snapshot}::pg_snapshot)`;
}

/**
 * Above this many change-log entries of one table since the cursor, a pull
 * does not take their ids from the window (see since).
 */
export const WRITTEN_IDS_CAP = 20_000;

/** The separator of ids that travel as one string (see since): a control character, which ids seldom hold. */
const ID_SEPARATOR = '\u001f';

/**
 * The change-log entries since the cursor (`snapshot`) that a pull looks at
 * one by one, each row once with its latest earlier values and whether any
 * of its changes had some (`had_old`); then one row per table written
 * (`row_id` null), with the ids of the rows written, joined by
 * ID_SEPARATOR (`written`; null above WRITTEN_IDS_CAP entries, or when one
 * is empty or holds the separator).
 */
function changedRowsSql(snapshot: string, membershipTables: string): string {
  return `WITH w AS MATERIALIZED (SELECT tbl, row_id, seq, old_row FROM _dovetail_changes WHERE ${sinceCursor(snapshot)}),
     one AS (SELECT DISTINCT tbl, row_id FROM w WHERE old_row IS NOT NULL OR tbl = ANY(${membershipTables}))
   (SELECT DISTINCT ON (w.tbl, w.row_id) w.tbl, w.row_id, w.old_row, bool_or(w.old_row IS NOT NULL) OVER (PARTITION BY w.tbl, w.row_id) AS had_old, NULL::text AS written
      FROM w JOIN one ON one.tbl = w.tbl AND one.row_id = w.row_id
     ORDER BY w.tbl, w.row_id, w.seq DESC)
   UNION ALL
   SELECT tbl, NULL, NULL, NULL, CASE WHEN count(*) <= ${WRITTEN_IDS_CAP} AND bool_and(row_id <> '' AND strpos(row_id, E'\\x1f') = 0) THEN string_agg(row_id, E'\\x1f') END
     FROM w GROUP BY tbl`;
}

/** A row of changedRowsSql: a changed row, or (`row_id` null) a table written and its rows' ids. */
type WindowRow = { tbl: string; row_id: null; written: string | null } | (ChangedRow & { written: null });

/** The tables that `members` rules name, as a SQL text array. */
function membershipTablesSql(schema: Schema): string {
  const names = new Set(schema.tables.flatMap((t) => (t.visibility.kind === 'members' ? [t.visibility.table] : [])));
  return `ARRAY[${[...names].map(quoteLiteral).join(', ')}]::text[]`;
}

/**
 * The user's changes since the cursor (`prev`): `window` holds the rows with
 * earlier values, the membership rows, and the tables written with their
 * rows' ids. With `mayCommit`, the transaction ends with the last reads
 * when no delete has to be looked up after them (`committed`).
 */
async function since(tx: SqlSession, schema: Schema, userId: string, prev: string, window: readonly WindowRow[], mayCommit: boolean): Promise<{ changes: Change[]; committed: boolean }> {
  const byTable = new Map<string, string[]>();
  /** Per table written: the ids of its rows written since the cursor, or null when there were too many to list. */
  const written = new Map<string, string | null>();
  /** Rows of which some version since the cursor had earlier values: only those can be deletes for this user. */
  const hadOld = new Set<string>();
  const changed: ChangedRow[] = [];
  for (const c of window) {
    if (c.row_id === null) {
      written.set(c.tbl, c.written);
      continue;
    }
    changed.push(c);
    const ids = byTable.get(c.tbl) ?? [];
    ids.push(c.row_id);
    byTable.set(c.tbl, ids);
    if (c.had_old !== false) hadOld.add(`${c.tbl}\u0000${c.row_id}`);
  }
  const upsertsOut: Change[] = [];
  const deletesOut: Change[] = [];
  const { expanded, revoked } = await membershipExpansion(tx, schema, userId, changed);
  const moved = await movedExpansion(tx, schema, userId, changed);
  for (const [table, ids] of moved.expanded) expanded.set(table, [...(expanded.get(table) ?? []), ...ids]);
  for (const [table, ids] of moved.revoked) revoked.set(table, [...(revoked.get(table) ?? []), ...ids]);
  const reads: { t: TableModel; ids: string[] }[] = [];
  for (const t of schema.syncedTables) {
    const ids = [...new Set([...(byTable.get(t.name) ?? []), ...(expanded.get(t.name) ?? [])])];
    if (written.has(t.name) || ids.length > 0) reads.push({ t, ids });
  }
  // The tables' reads go as one script, and what ends the snapshot with
  // them unless a delete may have to be looked up after (a round trip
  // costs more than the statements it carries).
  const commit = mayCommit && hadOld.size === 0;
  const statements = reads.map(({ t, ids }) => tableReadSql(schema, t, userId, prev, ids, written.get(t.name)));
  const results = statements.length > 0 || commit ? await tx.script([...statements, ...(commit ? ['COMMIT'] : [])].join(';\n')) : [];
  for (const [i, { t, ids }] of reads.entries()) {
    const rows = results[i] ?? [];
    upsertsOut.push(...upserts(t, rows));
    const sent = new Set(rows.map((r) => String(r[t.primaryKey])));
    // (A row first written since the cursor and not visible, such as another
    // user's new row, had no earlier values: nothing to look up.)
    const gone = ids.filter((id) => !sent.has(id) && hadOld.has(`${t.name}\u0000${id}`));
    if (gone.length === 0) continue;
    // Rows that are gone, or that the user may no longer see: a delete, but
    // only for rows the user may have held, judged from their values before
    // the last change (a row that was never visible to the user, such as
    // another user's new row, is not mentioned at all).
    // Any version the row had since the cursor counts: its id may have been
    // freed and taken again by another user's row in the meantime.
    const deleted = await tx.query<{ id: string }>(
      `SELECT g.id FROM unnest($2::text[]) AS g(id)
        WHERE EXISTS (SELECT 1 FROM _dovetail_changes c
                       WHERE c.tbl = ${quoteLiteral(t.name)} AND c.row_id = g.id AND c.old_row IS NOT NULL
                         AND c.xid >= pg_snapshot_xmin($3::pg_snapshot) AND NOT pg_visible_in_snapshot(c.xid, $3::pg_snapshot)
                         AND ${deletedRowCondition(schema, t, 'c.old_row')})`,
      [userId, gone, prev],
    );
    for (const d of deleted) deletesOut.push({ op: 'delete', table: t.name, id: d.id });
  }
  for (const [table, revokedIds] of revoked) {
    // Not a row this pull sends (still visible another way), nor one already deleted.
    const pk = schema.table(table).primaryKey;
    const keep = new Set([
      ...deletesOut.filter((d) => d.table === table).map((d) => (d as { id: string }).id),
      ...upsertsOut.flatMap((u) => {
        const id = u.op === 'upsert' && u.table === table ? u.row[pk] : undefined;
        return typeof id === 'string' ? [id] : [];
      }),
    ]);
    for (const id of new Set(revokedIds)) if (!keep.has(id)) deletesOut.push({ op: 'delete', table, id });
  }
  // Deletes children first.
  const order = new Map(schema.tables.map((t, i) => [t.name, i]));
  deletesOut.sort((a, b) => (order.get(b.table) ?? 0) - (order.get(a.table) ?? 0));
  return { changes: [...upsertsOut, ...deletesOut], committed: commit };
}

/**
 * The rows of `t` listed (`ids`) and those written since the cursor, that
 * the user may see now, as one statement of a script (values as literals).
 * The ids are handed to Postgres in the statement, so that it knows how
 * many there are when it plans: it then goes from the ids to the rows, or
 * from the rows the user may see to the ids, whichever costs less. (Asked
 * as a join with the change log, it cannot know: its statistics say
 * nothing of entries newer than the last ANALYZE, and it went from 4,000
 * entries of other users to their rows, 15 ms instead of 1.) They travel as
 * one string that Postgres splits, which costs both sides far less than a
 * text array (for 4,000 ids, about 0.1 ms of Node instead of 2.9). Above
 * WRITTEN_IDS_CAP entries (`written` null), or with an id that is empty or
 * holds the separator, the join with the change log all the same.
 */
function tableReadSql(schema: Schema, t: TableModel, userId: string, prev: string, ids: readonly string[], written: string | null | undefined): string {
  const pk = `r.${q(t.primaryKey)}`;
  const visible = visibleCondition(schema, t, 'r', lit(userId));
  if (written !== null && !ids.some((id) => id === '' || id.includes(ID_SEPARATOR))) {
    const all = new Set(ids);
    if (written) for (const id of written.split(ID_SEPARATOR)) all.add(id);
    return `SELECT r.* FROM ${q(t.name)} r JOIN unnest(string_to_array(${lit([...all].join(ID_SEPARATOR))}, E'\\x1f')) AS w(id) ON w.id = ${pk} WHERE ${visible}`;
  }
  const listed = `ARRAY[${ids.map(lit).join(', ')}]::text[]`;
  return `SELECT r.* FROM ${q(t.name)} r WHERE ${pk} = ANY(${listed}) AND ${visible}
     UNION ALL
     SELECT r.* FROM ${q(t.name)} r
      WHERE EXISTS (SELECT 1 FROM _dovetail_changes c WHERE c.tbl = ${quoteLiteral(t.name)} AND c.row_id = ${pk} AND ${sinceCursor(lit(prev), 'c.xid')})
        AND NOT (${pk} = ANY(${listed})) AND ${visible}`;
}

/**
 * The server's version of rows a device changed locally: an upsert when the
 * user may see the row, a delete otherwise; for `deep` keys also every
 * visible row below (what a local delete took with it).
 */
async function refreshed(tx: SqlQueryable, schema: Schema, userId: string, keys: readonly RefreshKey[]): Promise<Change[]> {
  const out: Change[] = [];
  const byTable = new Map<string, { ids: Set<string>; deep: Set<string> }>();
  for (const k of keys) {
    if (!schema.hasTable(k.table) || schema.table(k.table).visibility.kind === 'none') continue;
    const entry = byTable.get(k.table) ?? { ids: new Set(), deep: new Set() };
    entry.ids.add(k.id);
    if (k.deep) entry.deep.add(k.id);
    byTable.set(k.table, entry);
  }
  for (const [name, { ids, deep }] of byTable) {
    const t = schema.table(name);
    const rows = await tx.query(`SELECT r.* FROM ${q(t.name)} r WHERE r.${q(t.primaryKey)} = ANY($2::text[]) AND ${visibleCondition(schema, t, 'r')}`, [userId, [...ids]]);
    out.push(...upserts(t, rows));
    const seen = new Set(rows.map((r) => String(r[t.primaryKey])));
    for (const id of ids) if (!seen.has(id)) out.push({ op: 'delete', table: name, id });
    if (deep.size > 0) await below(tx, schema, userId, t, [...deep].filter((id) => seen.has(id)), out, 0);
  }
  return out;
}

async function below(tx: SqlQueryable, schema: Schema, userId: string, parent: TableModel, ids: readonly string[], out: Change[], depth: number): Promise<void> {
  if (ids.length === 0 || depth > 16) return;
  for (const fk of schema.childrenOf(parent.name)) {
    const child = schema.table(fk.table);
    if (child.visibility.kind === 'none') continue;
    const rows = await tx.query(`SELECT r.* FROM ${q(child.name)} r WHERE r.${q(fk.column)} = ANY($2::text[]) AND ${visibleCondition(schema, child, 'r')}`, [userId, ids]);
    if (rows.length === 0) continue;
    out.push(...upserts(child, rows));
    if (child.name !== parent.name || depth < 16) await below(tx, schema, userId, child, rows.map((r) => String(r[child.primaryKey])), out, depth + 1);
  }
}

/** One change per row: upserts parents first (table order, then within a table), then deletes children first. */
function arrange(schema: Schema, changes: readonly Change[]): Change[] {
  const order = new Map(schema.tables.map((t, i) => [t.name, i]));
  const upserted = new Map<string, Change & { op: 'upsert' }>();
  const deleted = new Map<string, Change & { op: 'delete' }>();
  for (const c of changes) {
    if (c.op === 'upsert') {
      const key = `${c.table}\u0000${JSON.stringify(c.row[schema.table(c.table).primaryKey])}`;
      upserted.set(key, c);
    } else deleted.set(`${c.table}\u0000${JSON.stringify(c.id)}`, c);
  }
  for (const key of upserted.keys()) deleted.delete(key);
  const byTable = new Map<string, Record<string, unknown>[]>();
  for (const c of upserted.values()) {
    const rows = byTable.get(c.table) ?? [];
    rows.push(c.row);
    byTable.set(c.table, rows);
  }
  const ups: Change[] = [];
  for (const t of schema.tables) {
    const rows = byTable.get(t.name);
    if (!rows) continue;
    const ordered = t.selfReferencing ? parentsFirst(t, rows) : rows;
    for (const row of ordered) ups.push({ op: 'upsert', table: t.name, row: row as RowValues });
  }
  const dels = [...deleted.values()].sort((a, b) => (order.get(b.table) ?? 0) - (order.get(a.table) ?? 0));
  return [...ups, ...dels];
}

/** Upserts of one table, parents before children within a self-referencing table. */
export function upserts(t: TableModel, rows: readonly Record<string, unknown>[]): Change[] {
  const ordered = t.selfReferencing ? parentsFirst(t, rows) : rows;
  const integers = t.columns.filter((c) => c.kind === 'integer' || c.kind === 'real').map((c) => c.name);
  return ordered.map((row) => ({ op: 'upsert', table: t.name, row: wireRow(row, integers) }));
}

function parentsFirst(t: TableModel, rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  const selfKeys = t.foreignKeys.filter((k) => k.refTable === t.name).map((k) => k.column);
  const byId = new Map(rows.map((r) => [String(r[t.primaryKey]), r]));
  const seen = new Set<string>();
  const out: Record<string, unknown>[] = [];
  const visit = (r: Record<string, unknown>, depth: number): void => {
    const id = String(r[t.primaryKey]);
    if (seen.has(id)) return;
    seen.add(id);
    if (depth < 10_000) {
      for (const k of selfKeys) {
        const parent = byId.get(String(r[k]));
        if (parent) visit(parent, depth + 1);
      }
    }
    out.push(r);
  };
  for (const r of rows) visit(r, 0);
  return out;
}

/**
 * Postgres values as they travel: `bigint` columns arrive as strings (pg)
 * or bigints (PGlite). The row is the driver's own fresh object, so it is
 * converted in place rather than copied (a first sync has many).
 */
function wireRow(row: Record<string, unknown>, numeric: readonly string[]): RowValues {
  for (const k of numeric) {
    const v = row[k];
    if (v !== null && v !== undefined && typeof v !== 'number') row[k] = Number(v);
  }
  return row as RowValues;
}
