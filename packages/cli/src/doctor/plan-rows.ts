import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel } from '@dovetail/schema';
import type { Expected } from './expected.js';
import { plural, shown } from './format.js';
import { missingForScan } from './keys.js';
import type { KeyCheck } from './keys.js';
import { orphanWhere } from './orphans.js';
import type { DbShape } from './shape.js';
import type { FindingOf, RepairAction, RepairStep } from './types.js';

export type DraftStep = Omit<RepairStep, 'number' | 'display'>;

/** The steps that write rows (the others change definitions). */
export const ROW_ACTIONS: ReadonlySet<RepairAction> = new Set(['create_identity_row', 'set_null', 'delete_rows']);

/** Users known to exist (the device's owner, auth users) whose identity row is missing. */
export interface IdentityToCreate {
  readonly table: string;
  readonly column: string;
  readonly users: readonly { readonly id: string; readonly name?: string }[];
}

/** Rows of `table` picked by a condition on `alias`; nested selections derive their aliases from it, so they never clash. */
interface Selection {
  readonly table: string;
  readonly where: (alias: string) => string;
  /** The rows in words: `posts rows whose owner_id has no profiles.id`. */
  readonly what: string;
}

/** A value for a required column that has no default, as the server's own identity rows get it. */
function zeroValue(dialect: DbShape['dialect'], model: ColumnModel | undefined, dbType: string): string | number {
  const type = dbType.toLowerCase();
  const kind = model?.kind ?? (/bool/.test(type) ? 'boolean' : /json/.test(type) ? 'json' : /int|real|floa|doub|num|dec/.test(type) ? 'integer' : 'text');
  if (kind === 'text') return '';
  if (kind === 'json') return '{}';
  if (kind === 'boolean') return dialect === 'sqlite' ? 0 : 'false';
  return dialect === 'sqlite' ? 0 : '0';
}

/**
 * Creates the missing identity rows with the schema's defaults: only the
 * key, the columns that have neither a default nor NULL (given the values
 * the server would give them), and `name` when the user's name is known.
 */
export function identitySteps(shape: DbShape, expected: Expected | undefined, create: IdentityToCreate): DraftStep[] {
  const table = shape.tables.get(create.table);
  if (!table || create.users.length === 0) return [];
  const models = new Map((expected?.identity?.table === create.table ? expected.identity.columns : []).map((c) => [c.name, c]));
  const required = [...table.columns.values()].filter((c) => c.name !== create.column && !c.nullable && !c.hasDefault);
  const named = table.columns.has('name') && create.users.some((u) => u.name !== undefined) && (models.get('name')?.kind ?? 'text') === 'text';
  const columns = [create.column, ...required.map((c) => c.name), ...(named && !required.some((c) => c.name === 'name') ? ['name'] : [])];
  const valueOf = (user: IdentityToCreate['users'][number], column: string): string | number => {
    if (column === create.column) return user.id;
    if (column === 'name' && user.name !== undefined) return user.name;
    // As the server does: a unique text column (a handle) gets the user id, which no one else has.
    if (models.get(column)?.unique && models.get(column)?.kind === 'text') return user.id;
    return zeroValue(shape.dialect, models.get(column), table.columns.get(column)?.type ?? 'text');
  };
  const conflict = `ON CONFLICT (${q(create.column)}) DO NOTHING`;
  if (shape.dialect === 'sqlite') {
    return create.users.map((user) => ({
      action: 'create_identity_row',
      table: create.table,
      column: create.column,
      description: `create the identity row ${create.table} ${shown(user.id)} of the device's owner, with the schema's defaults`,
      sql: `INSERT INTO ${q(create.table)} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ${conflict}`,
      params: columns.map((c) => valueOf(user, c)),
      expectedRows: 1,
    }));
  }
  // Postgres: one statement for every user, each column as a text array cast to its type.
  const casts = columns.map((c, i) => `u.c${i}::${table.columns.get(c)?.type ?? 'text'}`);
  const shownIds = create.users.slice(0, 5).map((u) => shown(u.id)).join(', ');
  return [
    {
      action: 'create_identity_row',
      table: create.table,
      column: create.column,
      description: `create the identity rows of ${plural(create.users.length, 'auth user')} without one (${shownIds}${create.users.length > 5 ? ', ...' : ''}), with the schema's defaults`,
      sql: `INSERT INTO ${q(create.table)} (${columns.map(q).join(', ')}) SELECT ${casts.join(', ')} FROM unnest(${columns.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${columns.map((_, i) => `c${i}`).join(', ')}) ${conflict}`,
      params: columns.map((c) => create.users.map((u) => String(valueOf(u, c)))),
      expectedRows: create.users.length,
    },
  ];
}

function setNull(sel: Selection, columns: readonly string[], description: string, expectedRows?: number): DraftStep {
  return {
    action: 'set_null',
    table: sel.table,
    description,
    sql: `UPDATE ${q(sel.table)} AS c SET ${columns.map((c) => `${q(c)} = NULL`).join(', ')} WHERE ${sel.where('c')}`,
    params: [],
    rows: { alias: 'c', where: sel.where('c'), params: [], columns },
    ...(expectedRows === undefined ? {} : { expectedRows }),
  };
}

function deleteRows(sel: Selection, description: string, expectedRows?: number): DraftStep {
  return {
    action: 'delete_rows',
    table: sel.table,
    description,
    sql: `DELETE FROM ${q(sel.table)} AS c WHERE ${sel.where('c')}`,
    params: [],
    rows: { alias: 'c', where: sel.where('c'), params: [] },
    ...(expectedRows === undefined ? {} : { expectedRows }),
  };
}

/**
 * What happens to a row whose parent the repair deletes: what its key
 * declares for a deleted parent (`cascade` deletes, `set null` clears);
 * where the key would refuse the delete, the key is cleared if it may be
 * NULL, else the row goes too.
 */
function setsNull(dep: KeyCheck): boolean {
  return dep.nullable && (dep.expected?.onDelete ?? dep.db?.onDelete) !== 'cascade';
}

/**
 * Steps that take away the rows that point at `sel`, child-first, each as
 * its key says (see `setsNull`), a deleted row after its own dependents. A
 * cycle is not followed twice; the key check before COMMIT catches
 * anything left.
 */
function dependentSteps(shape: DbShape, checks: readonly KeyCheck[], sel: Selection, path: ReadonlySet<string>): DraftStep[] {
  const out: DraftStep[] = [];
  for (const dep of checks) {
    const key = dep.ref;
    if (key.refTable !== sel.table || missingForScan(shape, key) !== undefined) continue;
    const cols = key.columns.length === 1 ? `${q(key.columns[0] ?? '')}` : `(${key.columns.map(q).join(', ')})`;
    const depSel: Selection = {
      table: key.table,
      what: `${key.table} rows whose ${key.columns.join(', ')} points at ${sel.what}`,
      where: (a) => {
        const s = `${a}_s`;
        const left = key.columns.length === 1 ? `${a}.${cols}` : `(${key.columns.map((c) => `${a}.${q(c)}`).join(', ')})`;
        return `${left} IN (SELECT ${key.refColumns.map((c) => `${s}.${q(c)}`).join(', ')} FROM ${q(sel.table)} AS ${s} WHERE ${sel.where(s)})`;
      },
    };
    if (setsNull(dep)) out.push(setNull(depSel, key.columns, `set ${key.table}.${key.columns.join(', ')} to NULL where it points at ${sel.what}`));
    else if (!path.has(key.table)) {
      out.push(...dependentSteps(shape, checks, depSel, new Set([...path, key.table])));
      out.push(deleteRows(depSel, `delete the ${depSel.what} (first, so that no key breaks)`));
    }
  }
  return out;
}

/**
 * The steps that repair orphan rows: set the key to NULL where it may be
 * NULL, else delete the row after the rows that depend on it. Orphans of
 * identity rows that `created` brings back are left alone.
 */
export function orphanSteps(shape: DbShape, checks: readonly KeyCheck[], finding: FindingOf<'orphan_rows'>, created: ReadonlySet<string>): DraftStep[] {
  const { key, rows, count, nullable } = finding.details;
  const saved = key.columns.length === 1 ? rows.filter((r) => typeof r.values[0] === 'string' && created.has(r.values[0])).length : 0;
  const expectedRows = rows.length === count ? count - saved : undefined;
  if (expectedRows === 0) return [];
  const sel: Selection = { table: key.table, where: (a) => orphanWhere(shape, key, a), what: `${key.table} rows whose ${key.columns.join(', ')} has no ${key.refTable}.${key.refColumns.join(', ')}` };
  const example = rows.find((r) => !(typeof r.values[0] === 'string' && created.has(r.values[0])))?.text;
  const which = `${expectedRows === undefined ? 'the' : plural(expectedRows, 'row of', 'rows of')} ${key.table} whose ${key.columns.join(', ')} has no ${key.refTable}.${key.refColumns.join(', ')}${example ? ` (such as ${example})` : ''}`;
  if (nullable) return [setNull(sel, key.columns, `set ${key.columns.join(', ')} to NULL in ${which}`, expectedRows)];
  return [...dependentSteps(shape, checks, sel, new Set([key.table])), deleteRows(sel, `delete ${which}`, expectedRows)];
}
