import { quoteIdent as q } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import type { SqlQueryable } from './sql.js';
import { deletedRowCondition, visibleCondition } from './visibility.js';

/** A row written since the cursor: its table, id, and its values before the last change (null for an insert). */
export interface ChangedRow {
  tbl: string;
  row_id: string;
  old_row: Record<string, unknown> | null;
  /** Whether any change of the row since the cursor kept earlier values (an update or delete); unknown when absent. */
  had_old?: boolean;
}

type Collect = (table: string, ids: readonly string[]) => void;

/**
 * A membership row naming the user makes a whole subtree visible without
 * any of its rows changing (being added to a conversation shows its past
 * messages): such rows are added to the pull. A membership row that no
 * longer names the user takes the subtree away: its rows are deleted on
 * the device.
 */
export async function membershipExpansion(
  tx: SqlQueryable,
  schema: Schema,
  userId: string,
  changed: readonly ChangedRow[],
): Promise<{ expanded: Map<string, string[]>; revoked: Map<string, string[]> }> {
  const expanded = new Map<string, string[]>();
  const revoked = new Map<string, string[]>();
  const into = collector;
  for (const t of schema.syncedTables) {
    const v = t.visibility;
    if (v.kind !== 'members') continue;
    const touched = changed.filter((c) => c.tbl === v.table);
    if (touched.length === 0) continue;
    const ids = touched.map((c) => c.row_id);
    const keys = await tx.query<{ k: string }>(`SELECT DISTINCT m.${q(v.key)}::text AS k FROM ${q(v.table)} m WHERE m.id = ANY($2::text[]) AND m.${q(v.user)} = $1`, [userId, ids]);
    const roots = keys.map((k) => k.k);
    if (roots.length > 0) {
      into(expanded)(t.name, roots);
      await addDescendants(tx, schema, t, roots, into(expanded));
    }
    // Memberships of this user that are gone (or moved): roots they can no longer see.
    const lostRoots = touched.filter((c) => c.old_row && c.old_row[v.user] === userId).map((c) => String(c.old_row?.[v.key]));
    if (lostRoots.length === 0) continue;
    const stillVisible = await tx.query<{ id: string }>(`SELECT r.${q(t.primaryKey)}::text AS id FROM ${q(t.name)} r WHERE r.${q(t.primaryKey)} = ANY($2::text[]) AND ${visibleCondition(schema, t, 'r')}`, [userId, lostRoots]);
    const visible = new Set(stillVisible.map((r) => r.id));
    const lost = lostRoots.filter((r) => !visible.has(r));
    if (lost.length === 0) continue;
    into(revoked)(t.name, lost);
    into(revoked)(v.table, touched.filter((c) => c.old_row && c.old_row[v.user] === userId).map((c) => c.row_id));
    await addDescendants(tx, schema, t, lost, into(revoked));
  }
  return { expanded, revoked };
}

async function addDescendants(tx: SqlQueryable, schema: Schema, parent: TableModel, ids: readonly string[], add: (table: string, ids: readonly string[]) => void, depth = 0): Promise<void> {
  if (depth > 8 || ids.length === 0) return;
  for (const child of schema.syncedTables) {
    const v = child.visibility;
    if (v.kind !== 'through' || v.table !== parent.name || child.name === parent.name) continue;
    const rows = await tx.query<{ id: string }>(`SELECT ${q(child.primaryKey)}::text AS id FROM ${q(child.name)} WHERE ${q(v.column)} = ANY($1::text[])`, [ids]);
    const childIds = rows.map((r) => r.id);
    add(child.name, childIds);
    await addDescendants(tx, schema, child, childIds, add, depth + 1);
  }
}

/**
 * A row whose visibility-deciding values changed (moved to another parent,
 * handed to another owner, re-attached under another ancestor) changes who
 * may see everything below it, although none of those rows changed: they
 * are added to the pull, so a user who gains the subtree gets it, and a
 * user who could see the row before and cannot now loses its subtree.
 */
export async function movedExpansion(tx: SqlQueryable, schema: Schema, userId: string, changed: readonly ChangedRow[]): Promise<{ expanded: Map<string, string[]>; revoked: Map<string, string[]> }> {
  const expanded = new Map<string, string[]>();
  const revoked = new Map<string, string[]>();
  for (const t of schema.syncedTables) {
    const columns = decidingColumns(t);
    if (columns.length === 0 || !hasDescendants(schema, t)) continue;
    const touched = changed.filter((c) => c.tbl === t.name && c.old_row !== null);
    if (touched.length === 0) continue;
    const now = await tx.query(`SELECT r.* FROM ${q(t.name)} r WHERE r.${q(t.primaryKey)}::text = ANY($1::text[])`, [touched.map((c) => c.row_id)]);
    const byId = new Map(now.map((r) => [String(r[t.primaryKey]), r]));
    const moved = touched.filter((c) => {
      const row = byId.get(c.row_id);
      return row !== undefined && columns.some((col) => textOf(row[col]) !== textOf(c.old_row?.[col]));
    });
    if (moved.length === 0) continue;
    const ids = moved.map((c) => c.row_id);
    await descendants(tx, schema, t, ids, collector(expanded));
    // Those the user could see before the move and cannot now: what is below goes too.
    const before = await tx.query<{ id: string }>(
      `SELECT x.id FROM unnest($2::text[], $3::jsonb[]) AS x(id, old_row) WHERE ${deletedRowCondition(schema, t, 'x.old_row')}`,
      [userId, ids, moved.map((c) => JSON.stringify(c.old_row))],
    );
    if (before.length === 0) continue;
    const stillVisible = new Set(
      (await tx.query<{ id: string }>(`SELECT r.${q(t.primaryKey)}::text AS id FROM ${q(t.name)} r WHERE r.${q(t.primaryKey)}::text = ANY($2::text[]) AND ${visibleCondition(schema, t, 'r')}`, [userId, before.map((b) => b.id)])).map((r) => r.id),
    );
    const lost = before.map((b) => b.id).filter((id) => !stillVisible.has(id));
    if (lost.length > 0) await descendants(tx, schema, t, lost, collector(revoked));
  }
  return { expanded, revoked };
}

/** The columns whose values decide who may see rows of `t` or below it. */
function decidingColumns(t: TableModel): string[] {
  const columns = new Set<string>();
  if (t.visibility.kind === 'through') columns.add(t.visibility.column);
  if (t.visibility.kind === 'owner') columns.add(t.owner.column);
  for (const fk of t.foreignKeys) if (fk.refTable === t.name) columns.add(fk.column);
  return [...columns];
}

function hasDescendants(schema: Schema, t: TableModel): boolean {
  return t.selfReferencing || schema.syncedTables.some((c) => c.visibility.kind === 'through' && c.visibility.table === t.name && c.name !== t.name);
}

function textOf(value: unknown): string | null {
  return value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value);
}

/** Rows below `ids` of `parent`: through children, and children by keys to the table itself. */
async function descendants(tx: SqlQueryable, schema: Schema, parent: TableModel, ids: readonly string[], add: Collect, depth = 0): Promise<void> {
  if (depth > 8 || ids.length === 0) return;
  for (const fk of parent.foreignKeys.filter((k) => k.refTable === parent.name)) {
    const rows = await tx.query<{ id: string }>(`SELECT ${q(parent.primaryKey)}::text AS id FROM ${q(parent.name)} WHERE ${q(fk.column)} = ANY($1::text[])`, [ids]);
    const childIds = rows.map((r) => r.id);
    add(parent.name, childIds);
    await descendants(tx, schema, parent, childIds, add, depth + 1);
  }
  await addDescendants(tx, schema, parent, ids, add, depth);
}

function collector(map: Map<string, string[]>): Collect {
  return (table, ids) => {
    if (ids.length > 0) map.set(table, [...(map.get(table) ?? []), ...ids]);
  };
}
