import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, ForeignKeyModel, Schema, TableModel } from '@dovetail/schema';
import type { JsonValue, Mutation } from '@dovetail/protocol';
import { parentCheckSql, parentKey } from './insert-script.js';
import { checkColumns, tableOf } from './op-checks.js';
import type { Prefetched } from './insert-script.js';
import { ownerOf } from './ownership.js';
import { Refusal } from './refusal.js';
import type { SqlQueryable } from './sql.js';

interface Written {
  readonly table: TableModel;
  readonly id: string;
  /** Columns the op set (all given columns for insert/upsert). */
  readonly columns: ReadonlySet<string>;
  /** The row as the statement left it (RETURNING *). */
  row: Record<string, unknown>;
  /**
   * For a row owned through a parent: that parent's owner, read by the key
   * check (which looks at the parent anyway), saving a query.
   */
  parentOwner?: string | null;
}

export interface ApplyContext {
  readonly tx: SqlQueryable;
  readonly schema: Schema;
  readonly userId: string;
  readonly clientId: string;
  /** What an insert script already did and found (see insert-script.ts). */
  readonly prefetched?: Prefetched;
}

/**
 * Applies one mutation inside an open transaction, or throws a `Refusal`.
 * Ownership is checked before (the row as it was) and after (the row as it
 * is), keys are checked before COMMIT by looking for the parents (so
 * Postgres never has to raise 23503), and a parent deleted meanwhile is
 * handled by the key's declared policy.
 *
 * Each statement returns the row it wrote, so the checks read nothing again
 * unless the mutation also deletes (a cascade may have changed what it wrote).
 */
export async function applyMutation(ctx: ApplyContext, mutation: Mutation): Promise<void> {
  const written = new Map<string, Written>();
  const deleted: { table: TableModel; id: string }[] = [];
  const wrote = (table: TableModel, id: string, columns: readonly ColumnModel[], row: Record<string, unknown>): void => {
    const key = `${table.name}\u0000${id}`;
    const before = written.get(key);
    written.set(key, { table, id, columns: new Set([...(before?.columns ?? []), ...columns.map((c) => c.name)]), row });
  };
  for (const [index, op] of mutation.ops.entries()) {
    const table = tableOf(ctx.schema, op, index);
    if (op.op === 'delete') {
      const current = await currentRow(ctx.tx, table, op.id);
      if (!current) continue; // already gone: deleting is idempotent
      await requireOwner(ctx, table, current, op.id, 'delete');
      await ctx.tx.query(`DELETE FROM ${q(table.name)} WHERE ${q(table.primaryKey)} = $1`, [op.id]);
      written.delete(`${table.name}\u0000${op.id}`);
      deleted.push({ table, id: op.id });
      continue;
    }
    if (op.op === 'update') {
      const current = await currentRow(ctx.tx, table, op.id);
      if (!current) throw new Refusal('row_not_found', `update of ${table.name} '${op.id}': no such row on the server`, { table: table.name, rowId: op.id });
      await requireOwner(ctx, table, current, op.id, 'update');
      const set = checkColumns(table, op.set, index, false);
      if (set.some((c) => c.name === table.primaryKey && op.set[c.name] !== op.id)) {
        throw new Refusal('invalid', `update of ${table.name} '${op.id}' changes its primary key`, { table: table.name, rowId: op.id });
      }
      const cols = set.filter((c) => c.name !== table.primaryKey);
      if (cols.length === 0) continue;
      const params = cols.map((c) => encode(c, op.set[c.name]));
      const rows = await ctx.tx.query(
        `UPDATE ${q(table.name)} SET ${cols.map((c, i) => `${q(c.name)} = ${placeholder(c, i + 1)}`).join(', ')} WHERE ${q(table.primaryKey)} = $${cols.length + 1} RETURNING *`,
        [...params, op.id],
      );
      wrote(table, op.id, cols, rows[0] ?? { ...current, ...op.set });
      continue;
    }
    // insert / upsert
    const cols = checkColumns(table, op.row, index, true);
    const id = op.row[table.primaryKey];
    if (typeof id !== 'string' || id.length === 0) throw new Refusal('invalid', `${op.op} into ${table.name}: ${table.primaryKey} must be a non-empty string`, { table: table.name });
    if (op.op === 'upsert') {
      const current = await currentRow(ctx.tx, table, id);
      if (current) await requireOwner(ctx, table, current, id, 'upsert');
    }
    const params = cols.map((c) => encode(c, op.row[c.name]));
    const names = cols.map((c) => q(c.name)).join(', ');
    const values = cols.map((c, i) => placeholder(c, i + 1)).join(', ');
    const update = cols.filter((c) => c.name !== table.primaryKey);
    const conflict =
      op.op === 'upsert' && update.length > 0
        ? ` ON CONFLICT (${q(table.primaryKey)}) DO UPDATE SET ${update.map((c) => `${q(c.name)} = EXCLUDED.${q(c.name)}`).join(', ')}`
        : ` ON CONFLICT (${q(table.primaryKey)}) DO NOTHING`;
    const row = ctx.prefetched ? ctx.prefetched.rows[index] : (await ctx.tx.query(`INSERT INTO ${q(table.name)} (${names}) VALUES (${values})${conflict} RETURNING *`, params))[0];
    if (!row) {
      if (op.op === 'insert') throw new Refusal('invalid', `insert into ${table.name}: a row with ${table.primaryKey} '${id}' already exists`, { table: table.name, rowId: id });
      continue; // an upsert of nothing but the id, onto an existing row
    }
    wrote(table, id, cols, row);
  }

  const rows = [...written.values()];
  // A cascade or set null of a delete may have changed rows written before it.
  if (deleted.length > 0) {
    for (const w of rows) {
      const now = await currentRow(ctx.tx, w.table, w.id);
      if (now) w.row = now;
      else written.delete(`${w.table.name}\u0000${w.id}`);
    }
  }
  const live = [...written.values()];
  // A row that plainly belongs to someone else (its owner column says so)
  // is refused as such before its keys are looked at; then the keys; then
  // rows owned through a parent.
  for (const w of live) if (w.table.owner.kind === 'column') checkOwner(ctx, w, w.row[w.table.owner.column]);
  const gone = new Set<Written>();
  for (const w of live) if ((await checkParents(ctx, w)) === 'removed') gone.add(w);
  for (const d of deleted) await checkRestrictedChildren(ctx, d.table, d.id);
  for (const w of live) {
    if (gone.has(w) || w.table.owner.kind !== 'through') continue;
    checkOwner(ctx, w, w.parentOwner !== undefined ? w.parentOwner : await ownerOf(ctx.tx, ctx.schema, w.table, w.row));
  }
}

function checkOwner(ctx: ApplyContext, w: Written, owner: unknown): void {
  if (owner === ctx.userId) return;
  throw new Refusal('forbidden', `${w.table.name} '${w.id}' would belong to ${owner === undefined || owner === null ? 'no one' : 'another user'}; you may only write rows you own`, { table: w.table.name, rowId: w.id });
}

function placeholder(c: ColumnModel, n: number): string {
  return c.kind === 'json' ? `$${n}::jsonb` : `$${n}`;
}

function encode(c: ColumnModel, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  return c.kind === 'json' ? JSON.stringify(value) : value;
}

async function currentRow(tx: SqlQueryable, table: TableModel, id: string): Promise<Record<string, unknown> | undefined> {
  const rows = await tx.query(`SELECT * FROM ${q(table.name)} WHERE ${q(table.primaryKey)} = $1 FOR UPDATE`, [id]);
  return rows[0];
}

async function requireOwner(ctx: ApplyContext, table: TableModel, row: Record<string, unknown>, id: string, what: string): Promise<void> {
  const owner = await ownerOf(ctx.tx, ctx.schema, table, row);
  if (owner !== ctx.userId) {
    throw new Refusal('forbidden', `${what} of ${table.name} '${id}': the row belongs to ${owner === undefined ? 'no one' : 'another user'}`, { table: table.name, rowId: id });
  }
}

/**
 * Every key the row sets must find its parent; a missing parent becomes a
 * typed refusal, or is handled by its policy (`removed`: the row went with
 * its deleted parent).
 */
async function checkParents(ctx: ApplyContext, w: Written): Promise<'kept' | 'removed'> {
  const row = w.row;
  for (const fk of w.table.foreignKeys) {
    if (!w.columns.has(fk.column)) continue;
    const value = row[fk.column];
    // Keys are text (the schema insists), so anything else is no key at all.
    if (typeof value !== 'string') continue;
    const ownedThrough = w.table.owner.kind === 'through' && w.table.owner.column === fk.column;
    const looked = ctx.prefetched?.parents.get(parentKey(fk.refTable, fk.refColumn, value, ownedThrough));
    const hit =
      looked !== undefined
        ? (looked ?? undefined)
        : (await ctx.tx.query<{ visible: boolean; owner: string | null }>(parentCheckSql(ctx.schema, fk, ownedThrough), [ctx.userId, value]))[0];
    if (hit?.visible) {
      if (ownedThrough) w.parentOwner = hit.owner;
      continue;
    }
    if (hit) {
      // The parent exists, but not for this user: a row may only point at
      // rows its writer may see. Answered like a missing parent, so the
      // refusal does not reveal that the row exists.
      throw new Refusal('parent_missing', `${w.table.name}.${fk.column} = '${value}' has no ${fk.refTable}.${fk.refColumn} that you may see`, {
        table: w.table.name,
        column: fk.column,
        value,
        referencedTable: fk.refTable,
        rowId: w.id,
      });
    }
    if ((await missingParent(ctx, w, fk, value)) === 'removed') return 'removed';
  }
  return 'kept';
}

async function missingParent(ctx: ApplyContext, w: Written, fk: ForeignKeyModel, value: string): Promise<'kept' | 'removed'> {
  const details = { table: w.table.name, column: fk.column, value: value as JsonValue, referencedTable: fk.refTable, rowId: w.id };
  const refused = await ctx.tx.query(`SELECT 1 FROM _dovetail_refused WHERE client_id = $1 AND tbl = $2 AND row_id = $3`, [ctx.clientId, fk.refTable, value]);
  if (refused.length > 0) {
    throw new Refusal('parent_rejected', `${w.table.name}.${fk.column} = '${value}': ${fk.refTable} '${value}' was created by an earlier mutation of this device that was refused`, details);
  }
  const tombstone = await ctx.tx.query<{ old_row: Record<string, unknown> }>(
    `SELECT old_row FROM _dovetail_changes WHERE tbl = $1 AND row_id = $2 AND old_row IS NOT NULL ORDER BY seq DESC LIMIT 1`,
    [fk.refTable, value],
  );
  const old = tombstone[0]?.old_row;
  if (!old) {
    throw new Refusal('parent_missing', `${w.table.name}.${fk.column} = '${value}' has no ${fk.refTable}.${fk.refColumn}`, details);
  }
  switch (fk.onConcurrentDelete) {
    case 'reject':
      throw new Refusal('parent_deleted', `${w.table.name}.${fk.column} = '${value}': ${fk.refTable} '${value}' was deleted while this change was offline`, details);
    case 'cascade':
      // The child goes the way of its parent; its delete is captured as a tombstone.
      await ctx.tx.query(`DELETE FROM ${q(w.table.name)} WHERE ${q(w.table.primaryKey)} = $1`, [w.id]);
      return 'removed';
    case 'restore': {
      const parent = ctx.schema.table(fk.refTable);
      const cols = parent.columns.filter((c) => c.name in old);
      await ctx.tx.query(
        `INSERT INTO ${q(parent.name)} (${cols.map((c) => q(c.name)).join(', ')}) VALUES (${cols.map((c, i) => placeholder(c, i + 1)).join(', ')}) ON CONFLICT DO NOTHING`,
        cols.map((c) => encode(c, old[c.name])),
      );
      const restored = await currentRow(ctx.tx, parent, value);
      if (restored) await checkParents(ctx, { table: parent, id: value, columns: new Set(cols.map((c) => c.name)), row: restored });
      return 'kept';
    }
  }
}

async function checkRestrictedChildren(ctx: ApplyContext, table: TableModel, id: string): Promise<void> {
  for (const fk of ctx.schema.childrenOf(table.name)) {
    if (fk.onDelete !== 'restrict') continue;
    const rows = await ctx.tx.query(`SELECT ${q(ctx.schema.table(fk.table).primaryKey)} AS id FROM ${q(fk.table)} WHERE ${q(fk.column)} = $1 LIMIT 1`, [id]);
    const child = rows[0] as { id?: string } | undefined;
    if (child) {
      throw new Refusal('invalid', `cannot delete ${table.name} '${id}': ${fk.table} '${String(child.id)}' still points at it through ${fk.table}.${fk.column} (restrict)`, {
        table: fk.table,
        column: fk.column,
        value: id,
        referencedTable: table.name,
        rowId: String(child.id),
      });
    }
  }
}

/** Rows a mutation would create, recorded when it is refused so dependants get `parent_rejected`. */
export function createdRows(mutation: Mutation, schema: Schema): { table: string; id: string }[] {
  const out: { table: string; id: string }[] = [];
  for (const op of mutation.ops) {
    if ((op.op === 'insert' || op.op === 'upsert') && schema.hasTable(op.table)) {
      const id = op.row[schema.table(op.table).primaryKey];
      if (typeof id === 'string') out.push({ table: op.table, id });
    }
  }
  return out;
}

