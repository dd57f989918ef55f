/**
 * The invariants every step of the Postr test ends on, checked against the
 * databases themselves rather than through the engine's own bookkeeping.
 */
import { quoteIdent as q } from '@dovetail/schema';
import type { TableName } from '@dovetail/schema';
import type { Sql } from '@dovetail/server';
import type { PostrDatabase, PostrSchema } from 'postr';
import { schema } from 'postr';

type Table = TableName<PostrSchema>;

/**
 * Which rows of each table a user may see, written out by hand from the
 * rules in schema.ts (undefined: public), so the server's compiled
 * visibility is checked against an independent reading of the rules.
 */
const VISIBLE_TO: Record<Table, string | undefined> = {
  users: undefined,
  posts: undefined,
  reactions: undefined,
  bookmarks: 't.user_id = $1',
  conversations: 'EXISTS (SELECT 1 FROM conversation_members m WHERE m.conversation_id = t.id AND m.user_id = $1)',
  conversation_members: 'EXISTS (SELECT 1 FROM conversation_members m WHERE m.conversation_id = t.conversation_id AND m.user_id = $1)',
  messages: 'EXISTS (SELECT 1 FROM conversation_members m WHERE m.conversation_id = t.conversation_id AND m.user_id = $1)',
};

export const tables = schema.syncedTables.map((t) => t.name as Table);

/** The server's rows of `table` that `user` may see, as a device decodes them, by id. */
export async function visibleRows(sql: Sql, table: Table, user: string): Promise<Record<string, unknown>[]> {
  const condition = VISIBLE_TO[table];
  const rows = await sql.query(`SELECT * FROM ${q(table)} t${condition ? ` WHERE ${condition}` : ''}`, condition ? [user] : []);
  const integers = schema.table(table).columns.filter((c) => c.kind === 'integer').map((c) => c.name);
  // bigint columns arrive as strings (pg) or bigints (PGlite); devices hold numbers.
  for (const row of rows) for (const c of integers) if (row[c] !== null) row[c] = Number(row[c]);
  return byId(rows);
}

/** A device's rows of `table`, by id. */
export async function deviceRows(db: PostrDatabase, table: Table): Promise<Record<string, unknown>[]> {
  return byId(await db.rows(table));
}

/** Rows whose key points at nothing, as `table.column = 'value'` (Postgres). */
export async function orphans(sql: Sql): Promise<string[]> {
  const found: string[] = [];
  for (const t of schema.tables) {
    for (const fk of t.foreignKeys) {
      const rows = await sql.query<{ value: string }>(
        `SELECT c.${q(fk.column)} AS value FROM ${q(t.name)} c WHERE c.${q(fk.column)} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${q(fk.refTable)} p WHERE p.${q(fk.refColumn)} = c.${q(fk.column)})`,
      );
      for (const r of rows) found.push(`${t.name}.${fk.column} = '${r.value}'`);
    }
  }
  return found;
}

/** SQLite's own list of broken keys on a device, not the engine's reading of it. */
export function foreignKeyCheck(db: PostrDatabase): Promise<unknown[]> {
  return db.query('PRAGMA foreign_key_check');
}

function byId<R extends object>(rows: R[]): R[] {
  const id = (r: R): string => String((r as { id?: unknown }).id);
  return [...rows].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
}
