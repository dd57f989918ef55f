import { quoteIdent as q, quoteLiteral } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import type { SqlQueryable } from './sql.js';
import { deletedRowCondition, visibleCondition } from './visibility.js';

/**
 * Who should be poked about a batch of committed changes. The poke service
 * reads a tick's worth from the change log (`change-feed.ts`) and asks the
 * database which of the connected users may see them,
 * with the same visibility rules pulls use. A poke only says "pull now", so
 * erring towards poking too many is safe, and missing one only delays a
 * device until its next scheduled sync.
 */
export interface Announced {
  /** Rows written (inserted or updated): judged by their current row. */
  readonly current: Map<string, Set<string>>;
  /** Rows updated or deleted: judged by their previous image, so a device that loses a row hears about it. */
  readonly previous: Map<string, Set<string>>;
  /** Tables changed in bulk, named as a whole: everyone who may see any of their rows. */
  readonly whole: Set<string>;
  /**
   * The devices (client ids) whose pushes wrote these changes; null stands
   * for any other writer, or for writers not known (changes in bulk).
   */
  readonly writers: Set<string | null>;
}

export function emptyAnnounced(): Announced {
  return { current: new Map(), previous: new Map(), whole: new Set(), writers: new Set() };
}

function add(map: Map<string, Set<string>>, table: string, id: string): void {
  let ids = map.get(table);
  if (!ids) map.set(table, (ids = new Set()));
  ids.add(id);
}

/**
 * Notes one changed row: an inserted row is judged by its current row; an
 * updated or deleted one (the change log kept its previous image) by both,
 * since a row that is gone now simply matches nothing as it is.
 */
export function noteChange(into: Announced, table: string, id: string, kind: 'inserted' | 'updated'): void {
  add(into.current, table, id);
  if (kind === 'updated') add(into.previous, table, id);
}

/**
 * The subset of `candidates` (the users with a connected device) who may
 * see at least one announced change.
 */
export async function audienceOf(db: SqlQueryable, schema: Schema, announced: Announced, candidates: readonly string[]): Promise<Set<string>> {
  const everyone = new Set(candidates);
  const found = new Set<string>();
  if (candidates.length === 0) return found;
  const synced = (name: string): TableModel | undefined => (schema.hasTable(name) && schema.table(name).visibility.kind !== 'none' ? schema.table(name) : undefined);

  for (const name of announced.whole) if (synced(name)) return everyone;
  for (const name of new Set([...announced.current.keys(), ...announced.previous.keys()])) {
    if (synced(name)?.visibility.kind === 'public') return everyone;
  }
  const collect = (rows: readonly { user_id: string }[]): void => rows.forEach((r) => found.add(r.user_id));

  for (const [name, ids] of announced.current) {
    const t = synced(name);
    if (!t) continue;
    collect(
      await db.query<{ user_id: string }>(
        `SELECT DISTINCT u.id AS user_id FROM unnest($1::text[]) AS u(id), ${q(t.name)} r
         WHERE r.${q(t.primaryKey)}::text = ANY($2::text[]) AND ${visibleCondition(schema, t, 'r', 'u.id')}`,
        [candidates, [...ids]],
      ),
    );
    collect(await membersOf(db, schema, t, 'current', [...ids], candidates));
  }
  for (const [name, ids] of announced.previous) {
    const t = synced(name);
    if (!t) continue;
    collect(
      await db.query<{ user_id: string }>(
        `SELECT DISTINCT u.id AS user_id FROM unnest($1::text[]) AS u(id),
           (SELECT DISTINCT ON (row_id) old_row FROM _dovetail_changes
             WHERE tbl = ${quoteLiteral(t.name)} AND row_id = ANY($2::text[]) AND old_row IS NOT NULL
             ORDER BY row_id, seq DESC) c
         WHERE ${deletedRowCondition(schema, t, 'c.old_row', 'u.id')}`,
        [candidates, [...ids]],
      ),
    );
    collect(await membersOf(db, schema, t, 'previous', [...ids], candidates));
  }
  return found;
}

/**
 * When the changed table is a membership table (a `members` rule names
 * it), the member the row names is in the audience too: a user added to a
 * group hears about it, and so does a user removed from one.
 */
async function membersOf(db: SqlQueryable, schema: Schema, t: TableModel, which: 'current' | 'previous', ids: readonly string[], candidates: readonly string[]): Promise<{ user_id: string }[]> {
  const columns = new Set<string>();
  for (const other of schema.tables) {
    const v = other.visibility;
    if (v.kind === 'members' && v.table === t.name) columns.add(v.user);
  }
  const out: { user_id: string }[] = [];
  for (const column of columns) {
    const sql =
      which === 'current'
        ? `SELECT DISTINCT r.${q(column)}::text AS user_id FROM ${q(t.name)} r WHERE r.${q(t.primaryKey)}::text = ANY($2::text[]) AND r.${q(column)}::text = ANY($1::text[])`
        : `SELECT DISTINCT old_row ->> ${quoteLiteral(column)} AS user_id FROM _dovetail_changes
            WHERE tbl = ${quoteLiteral(t.name)} AND row_id = ANY($2::text[]) AND old_row ->> ${quoteLiteral(column)} = ANY($1::text[])`;
    out.push(...(await db.query<{ user_id: string }>(sql, [candidates, ids])));
  }
  return out;
}
