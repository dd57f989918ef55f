import { ENGINE_TABLES } from '@dovetail/server';
import type { Sql } from '@dovetail/server';

/**
 * The model's own reading of the e2e schema's rules and of the invariants
 * every harness checks (numbers as in the design's list):
 *
 * 1. no broken key on a device or on the server, after every step;
 * 2. no 23503 in the server log;
 * 3. every acknowledged mutation applied exactly once;
 * 4. at rest, each device equals what its user may see (plus its pending
 *    mutations; at rest there are none);
 * 5. no device holds a row its user may not see; no push under another
 *    user's token;
 * 6. every refused mutation is in its device's rejected log;
 * 7. deleted rows never come back;
 * 8. queues drain once faults stop.
 */

export type Row = Record<string, unknown>;
export const TABLES = ['users', 'projects', 'tasks', 'comments'] as const;
export type TableName = (typeof TABLES)[number];
export type Rows = Record<TableName, Row[]>;

/** Every foreign key of the e2e schema: child table, column, parent table. */
export const KEYS: readonly { table: TableName; column: string; parent: TableName }[] = [
  { table: 'projects', column: 'owner_id', parent: 'users' },
  { table: 'tasks', column: 'project_id', parent: 'projects' },
  { table: 'tasks', column: 'parent_task_id', parent: 'tasks' },
  { table: 'comments', column: 'task_id', parent: 'tasks' },
  { table: 'comments', column: 'author_id', parent: 'users' },
];

/** An id (or key value) as text. */
export const idText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? null));

export const keyOf = (table: string, id: unknown): string => `${table}:${idText(id)}`;

/** A value as text, so that rows from SQLite and Postgres compare equal. */
export const valueKey = (v: unknown): string => JSON.stringify(v === undefined ? null : v);

/** A row as text with its columns sorted. */
export function rowText(row: Row): string {
  return JSON.stringify(Object.fromEntries(Object.keys(row).sort().map((k) => [k, row[k] ?? null])));
}

export async function readServer(sql: Sql): Promise<Rows> {
  const out = {} as Rows;
  for (const t of TABLES) out[t] = await sql.query<Row>(`SELECT * FROM "${t}" ORDER BY id`);
  return out;
}

/**
 * What `user` may see, as the design states it: users are public; a
 * project is its owner's; tasks and comments are visible through their
 * project (a comment through its task); and the set is the largest
 * foreign-key-closed one (a row whose parent the user may not see is not
 * visible either, along the whole self-referencing chain).
 */
export function visibleTo(rows: Rows, user: string): Rows {
  const users = rows.users;
  const userIds = new Set(users.map((u) => idText(u['id'])));
  const projects = rows.projects.filter((p) => p['owner_id'] === user && userIds.has(idText(p['owner_id'])));
  const projectIds = new Set(projects.map((p) => idText(p['id'])));
  let tasks = rows.tasks.filter((t) => projectIds.has(idText(t['project_id'])));
  for (;;) {
    const ids = new Set(tasks.map((t) => idText(t['id'])));
    const next = tasks.filter((t) => t['parent_task_id'] === null || t['parent_task_id'] === undefined || ids.has(idText(t['parent_task_id'])));
    if (next.length === tasks.length) break;
    tasks = next;
  }
  const taskIds = new Set(tasks.map((t) => idText(t['id'])));
  const comments = rows.comments.filter((c) => taskIds.has(idText(c['task_id'])) && userIds.has(idText(c['author_id'])));
  return { users, projects, tasks, comments };
}

/** Invariant 1 on the server: every key, checked with a LEFT JOIN. */
export async function serverOrphans(sql: Sql): Promise<string[]> {
  const out: string[] = [];
  for (const k of KEYS) {
    const rows = await sql.query<{ id: string; v: string }>(
      `SELECT c.id, c."${k.column}" AS v FROM "${k.table}" c LEFT JOIN "${k.parent}" p ON p.id = c."${k.column}" WHERE c."${k.column}" IS NOT NULL AND p.id IS NULL`,
    );
    for (const r of rows) out.push(`server: ${k.table} '${r.id}'.${k.column} = '${r.v}' has no ${k.parent}`);
  }
  return out;
}

/**
 * Invariant 3 on the server, from the commit records: every write to a
 * synced table was made by a transaction that recorded exactly one
 * mutation as applied (or is the server creating a user's identity row from
 * their token, G14); a refused mutation left no write behind; no
 * transaction recorded two mutations. So no mutation's effects were
 * applied twice, or without a record that makes a replay answer the
 * original result.
 */
export async function exactlyOnceProblems(sql: Sql): Promise<string[]> {
  const out: string[] = [];
  const twice = await sql.query<{ xid: string; n: number }>(`SELECT xid::text AS xid, count(*)::int AS n FROM _dovetail_ledger GROUP BY xid HAVING count(*) > 1`);
  for (const r of twice) out.push(`one transaction (xid ${r.xid}) recorded ${r.n} mutations`);
  const unrecorded = await sql.query<{ xid: string; tbl: string; row_id: string; has_old: boolean }>(
    `SELECT c.xid::text AS xid, c.tbl, c.row_id, (c.old_row IS NOT NULL) AS has_old FROM _dovetail_changes c
      WHERE NOT EXISTS (SELECT 1 FROM _dovetail_ledger l WHERE l.xid = c.xid) ORDER BY c.seq`,
  );
  const byXid = new Map<string, typeof unrecorded>();
  for (const r of unrecorded) byXid.set(r.xid, [...(byXid.get(r.xid) ?? []), r]);
  for (const [xid, writes] of byXid) {
    const identity = writes.length === 1 && writes[0]?.tbl === 'users' && !writes[0].has_old;
    if (!identity) out.push(`transaction xid ${xid} wrote ${writes.map((w) => `${w.tbl}:${w.row_id}${w.has_old ? ' (update/delete)' : ''}`).join(', ')} without recording a mutation in the ledger`);
  }
  const refusedWrites = await sql.query<{ client_id: string; mutation_id: string; tbl: string; row_id: string }>(
    `SELECT l.client_id, l.mutation_id, c.tbl, c.row_id FROM _dovetail_ledger l JOIN _dovetail_changes c ON c.xid = l.xid WHERE l.result->>'status' = 'rejected'`,
  );
  for (const r of refusedWrites) out.push(`refused mutation ${r.mutation_id} of client ${r.client_id} left a write behind: ${r.tbl}:${r.row_id}`);
  return out;
}

export interface LedgerRow {
  client_id: string;
  mutation_id: string;
  user_id: string;
  result: { id: string; status: 'applied' | 'rejected'; reason?: string; message?: string };
}

export async function readLedger(sql: Sql): Promise<LedgerRow[]> {
  const rows = await sql.query<LedgerRow & { result: unknown }>(`SELECT client_id, mutation_id, user_id, result FROM _dovetail_ledger ORDER BY client_id, seq`);
  return rows.map((r) => ({ ...r, result: (typeof r.result === 'string' ? JSON.parse(r.result) : r.result) as LedgerRow['result'] }));
}

/** Empties every table, the engine's included, between runs. */
export async function truncateAll(sql: Sql): Promise<void> {
  await sql.query(`TRUNCATE ${[...TABLES, ...ENGINE_TABLES].map((t) => `"${t}"`).join(', ')} RESTART IDENTITY CASCADE`);
}

/** Per column, every value a user could see (or a device wrote) for one row: where a device's values may come from. */
export type Provenance = Map<string, Map<string, Set<string>>>;

export function addProvenance(p: Provenance, key: string, row: Row): void {
  let cols = p.get(key);
  if (!cols) {
    cols = new Map();
    p.set(key, cols);
  }
  for (const [c, v] of Object.entries(row)) {
    let values = cols.get(c);
    if (!values) {
      values = new Set();
      cols.set(c, values);
    }
    values.add(valueKey(v));
  }
}

/** What the model knows of the mutations one device database created. */
export interface CreatedMutations {
  readonly key: string;
  /** Every mutation it committed locally, in order. */
  readonly created: readonly string[];
  /** Entries normalization removed: folded into `into`, or cancelled out (`into` undefined). */
  readonly normalized: ReadonlyMap<string, string | undefined>;
  /** Every mutation id that was ever in a push request. */
  readonly pushed: ReadonlySet<string>;
}

/**
 * Invariant 6 for one database: each mutation it created ends
 * - in the ledger (applied; or refused, and then in the rejected log with
 *   the same reason), or
 * - folded by normalization into another mutation that itself ends in the
 *   ledger, or cancelled out by it (an insert and a later delete of the
 *   same row, or an update a later delete makes moot). Cancelled ones are
 *   accepted only if they never left the device (checked against every
 *   push request); that their effects are absent is what invariant 4
 *   (device equals server at rest) shows.
 * Nothing else: a mutation that is nowhere has vanished.
 */
export function fateProblems(m: CreatedMutations, ledger: ReadonlyMap<string, LedgerRow>, rejected: readonly { id: string; reason: string }[], pending: ReadonlySet<string>): { invariant: string; text: string }[] {
  const problems: { invariant: string; text: string }[] = [];
  const problem = (invariant: string, text: string): void => void problems.push({ invariant, text });
  const refused = new Map(rejected.map((r) => [r.id, r]));
  const created = new Set(m.created);
  const settled = (id: string): boolean => ledger.has(id) || refused.has(id);
  for (const id of m.created) {
    const l = ledger.get(id);
    if (l) {
      const r = refused.get(id);
      if (l.result.status === 'rejected' && !r) problem('6', `${m.key}: the server refused ${id} (${l.result.reason ?? '?'}) but it is not in the rejected log`);
      else if (l.result.status === 'rejected' && r && r.reason !== l.result.reason) problem('6', `${m.key}: ${id} is in the rejected log as '${r.reason}', the server refused it as '${l.result.reason ?? '?'}'`);
      else if (l.result.status === 'applied' && r) problem('6', `${m.key}: ${id} was applied but is in the rejected log (${r.reason})`);
      continue;
    }
    if (refused.has(id)) {
      const r = refused.get(id);
      if (r?.reason !== 'too_large') problem('6', `${m.key}: ${id} is in the rejected log (${r?.reason ?? '?'}) but the server never processed it`);
      continue;
    }
    if (m.normalized.has(id)) {
      let into = m.normalized.get(id);
      for (let hops = 0; into !== undefined && !settled(into) && m.normalized.has(into) && hops < 100; hops++) into = m.normalized.get(into);
      if (m.pushed.has(id)) problem('6', `${m.key}: normalization removed ${id} after it had been pushed`);
      else if (into !== undefined && !settled(into)) problem('6', `${m.key}: ${id} was folded into ${into}, which never reached the server`);
      continue;
    }
    problem(pending.has(id) ? '8' : '6', `${m.key}: mutation ${id} ${pending.has(id) ? 'is still pending' : 'vanished: not applied, not refused, not folded by normalization'}`);
  }
  for (const r of rejected) if (!created.has(r.id)) problem('6', `${m.key}: the rejected log holds ${r.id}, which this database never created`);
  for (const id of ledger.keys()) if (!created.has(id)) problem('3', `${m.key}: the ledger holds ${id} for this client, which it never created`);
  return problems;
}
