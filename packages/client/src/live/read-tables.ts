import type { SqliteConnection, SqlValue } from '../driver.js';

/**
 * The tables a query reads, found by asking SQLite for its plan: every
 * `OpenRead` names a b-tree by root page, and `sqlite_schema` maps root
 * pages (of tables and of their indexes) to table names. Works with any
 * driver, since it is plain SQL.
 */
export async function tablesReadBy(conn: SqliteConnection, sql: string, params: readonly SqlValue[]): Promise<Set<string>> {
  const plan = await conn.all<{ opcode: string; p2: number; p3: number }>(`EXPLAIN ${sql}`, params);
  const pages = new Set(plan.filter((r) => r.opcode === 'OpenRead' && r.p3 === 0).map((r) => r.p2));
  if (pages.size === 0) return new Set();
  const schema = await conn.all<{ rootpage: number; tbl_name: string }>('SELECT rootpage, tbl_name FROM sqlite_schema WHERE rootpage > 0');
  return new Set(schema.filter((s) => pages.has(s.rootpage)).map((s) => s.tbl_name));
}
