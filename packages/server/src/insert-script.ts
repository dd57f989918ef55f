import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, ForeignKeyModel, Schema, TableModel } from '@dovetail/schema';
import type { Mutation } from '@dovetail/protocol';
import { checkColumns, tableOf } from './op-checks.js';
import { ownerExpression } from './ownership.js';
import { call } from './script.js';
import type { Call } from './script.js';
import { EXPECT_FUNCTION } from './setup.js';
import { scriptLiteral as lit } from './sql.js';
import { visibleCondition } from './visibility.js';

/** A parent looked up for a key check: whether the writer may see it, and its owner (when the child is owned through it). */
export interface ParentLookup {
  readonly visible: boolean;
  readonly owner: string | null;
}

/** What the statements of an insert script found, for `applyMutation`. */
export interface Prefetched {
  /** Per op: the row its INSERT wrote (every column the schema declares), or undefined when a row with its id was already there. */
  readonly rows: readonly (Record<string, unknown> | undefined)[];
  /** Parents by `parentKey`: found (visible or not), or null when there is no such row. */
  readonly parents: ReadonlyMap<string, ParentLookup | null>;
}

export interface InsertScript {
  /** Statements to run after the transaction is open, in order. */
  readonly statements: readonly Call[];
  /** Reads their results (one list of rows per statement, in order). */
  read(results: readonly Record<string, unknown>[][]): Prefetched;
}

/** Above this many ops, a mutation takes the ordinary path (one statement per round trip). */
const MAX_SCRIPT_OPS = 64;

export function parentKey(table: string, column: string, value: string, withOwner: boolean): string {
  return `${table}\u0000${column}\u0000${withOwner ? 'o' : '-'}\u0000${value}`;
}

/**
 * The push's fast path for a mutation made only of inserts (what a device
 * sends when it creates things): its INSERTs, then a look at every parent
 * its rows point at, as statements of the script that opens its
 * transaction. Such a mutation costs one round trip (its COMMIT travels
 * with the next mutation's script) instead of one per statement.
 *
 * The statements are those `applyMutation` would send, prepared once per
 * connection (script.ts); the parents are looked at after every insert, as
 * `applyMutation` does, so a parent inserted by the same mutation is
 * found. What they find is handed to `applyMutation`, which makes every
 * decision (a missing parent, ownership) as on the ordinary path.
 *
 * Undefined when the mutation does not qualify (another kind of op, a bad
 * table, column or value, too many ops): the ordinary path then applies
 * it, or refuses it with its usual message.
 */
export function insertScript(schema: Schema, userId: string, m: Mutation): InsertScript | undefined {
  const planned = plan(schema, m);
  if (!planned) return undefined;
  const texts = statementTexts(schema);
  const inserts = planned.inserts.map(({ table, cols, row }) => call(texts.insert(table, cols), cols.map((c) => literal(c, row[c.name]))));
  const keys = [...planned.parents.keys()];
  const checks = [...planned.parents.values()].map(({ fk, withOwner, value }) => call(texts.parentCheck(fk, withOwner), [lit(userId), lit(value)]));
  return {
    statements: [...inserts, ...checks],
    read(results) {
      const rows = inserts.map((_, i) => results[i]?.[0]);
      const parents = new Map<string, ParentLookup | null>();
      keys.forEach((key, i) => {
        const hit = results[inserts.length + i]?.[0];
        parents.set(key, hit ? { visible: hit['visible'] === true, owner: typeof hit['owner'] === 'string' ? hit['owner'] : null } : null);
      });
      return { rows, parents };
    },
  };
}

/**
 * The same mutation's statements for a pipelined transaction (see
 * pipeline.ts), where nothing is decided between its statements: each
 * checks what `applyMutation` would, and fails (EXPECTATION_FAILED, or
 * Postgres's own error) unless the mutation would be applied as it is:
 * - each INSERT without ON CONFLICT (a row that is there already fails
 *   it), returning the check that the row as written has the user in its
 *   owner column, and that each parent it points at is there, visible to
 *   the user and, for the key the row is owned through, owned by the user
 *   (the parent is locked, FOR KEY SHARE);
 * - a parent in a table the mutation also inserts into (it may be one of
 *   its own rows, written by a later op) is looked at the same way after
 *   all the INSERTs, by the key the op gave, which the INSERT checks the
 *   row as written still has.
 *
 * Undefined when the mutation does not qualify (as for insertScript, or a
 * row owned through a key it does not set).
 */
export function guardedInsertSteps(schema: Schema, userId: string, m: Mutation): Call[] | undefined {
  const planned = plan(schema, m);
  if (!planned) return undefined;
  const texts = statementTexts(schema);
  /** Tables this mutation inserts into: a parent there may be one of its own rows, looked at after them all. */
  const written = new Set(planned.inserts.map((i) => i.table.name));
  const steps: Call[] = [];
  const after = new Map<string, Call>();
  for (const { table, cols, row, keys } of planned.inserts) {
    const owner = table.owner;
    if (owner.kind === 'through' && typeof row[owner.column] !== 'string') return undefined;
    // The parents of the row as written, looked at by the INSERT itself,
    // unless this mutation may write them too.
    const merged: string[] = [];
    for (const ref of keys) {
      if (!written.has(ref.fk.refTable)) {
        merged.push(ref.fk.column);
        continue;
      }
      const key = parentKey(ref.fk.refTable, ref.fk.refColumn, ref.value, ref.withOwner);
      if (!after.has(key)) after.set(key, call(texts.parentGuard(ref.fk, ref.withOwner), [lit(userId), lit(ref.value)]));
    }
    const args = cols.map((c) => literal(c, row[c.name]));
    // The user follows the row's values when the statement names it (a parameter it does not use has no type).
    const namesUser = owner.kind === 'column' || merged.length > 0;
    steps.push(call(texts.guardedInsert(table, cols, merged), namesUser ? [...args, lit(userId)] : args));
  }
  return [...steps, ...after.values()];
}

/** A key a row sets: the parent it points at (`value`), and whether the row is owned through it. */
interface KeyRef {
  readonly fk: ForeignKeyModel;
  readonly withOwner: boolean;
  readonly value: string;
}

interface Planned {
  readonly inserts: readonly { table: TableModel; cols: readonly ColumnModel[]; row: Readonly<Record<string, unknown>>; keys: readonly KeyRef[] }[];
  /** Each parent looked at once, by `parentKey`. */
  readonly parents: ReadonlyMap<string, KeyRef>;
}

/** The rows of an insert-only mutation, checked, and the parents they point at; undefined when it does not qualify. */
function plan(schema: Schema, m: Mutation): Planned | undefined {
  if (m.ops.length === 0 || m.ops.length > MAX_SCRIPT_OPS) return undefined;
  const inserts: Planned['inserts'][number][] = [];
  const parents = new Map<string, KeyRef>();
  try {
    for (const [index, op] of m.ops.entries()) {
      if (op.op !== 'insert') return undefined;
      const table = tableOf(schema, op, index);
      const cols = checkColumns(table, op.row, index, true);
      const id = op.row[table.primaryKey];
      if (typeof id !== 'string' || id.length === 0) return undefined;
      const keys: KeyRef[] = [];
      for (const fk of table.foreignKeys) {
        const value = op.row[fk.column];
        if (typeof value !== 'string') continue;
        const ref = { fk, withOwner: table.owner.kind === 'through' && table.owner.column === fk.column, value };
        keys.push(ref);
        const key = parentKey(fk.refTable, fk.refColumn, value, ref.withOwner);
        if (!parents.has(key)) parents.set(key, ref);
      }
      inserts.push({ table, cols, row: op.row, keys });
    }
  } catch {
    return undefined; // a refusal: the ordinary path gives it
  }
  return { inserts, parents };
}

interface StatementTexts {
  insert(table: TableModel, cols: readonly ColumnModel[]): string;
  parentCheck(fk: ForeignKeyModel, withOwner: boolean): string;
  /** `merged`: the key columns whose parents the INSERT looks at itself. */
  guardedInsert(table: TableModel, cols: readonly ColumnModel[], merged: readonly string[]): string;
  parentGuard(fk: ForeignKeyModel, withOwner: boolean): string;
}

const textsBySchema = new WeakMap<Schema, StatementTexts>();

/** The statements' texts, made once per schema, table, column list and key (they are the same for every mutation). */
function statementTexts(schema: Schema): StatementTexts {
  let texts = textsBySchema.get(schema);
  if (texts) return texts;
  const made = new Map<string, string>();
  const once = (key: string, make: () => string): string => {
    let text = made.get(key);
    if (text === undefined) {
      text = make();
      if (made.size < 10_000) made.set(key, text);
    }
    return text;
  };
  const columns = (cols: readonly ColumnModel[]): string => cols.map((c) => q(c.name)).join(', ');
  const values = (cols: readonly ColumnModel[]): string => cols.map((c, i) => (c.kind === 'json' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ');
  const colsKey = (cols: readonly ColumnModel[]): string => cols.map((c) => c.name).join('\u0000');
  /**
   * The parent that `fk`'s value (SQL `value`) points at is there, visible
   * to `user` (SQL) and, `withOwner`, owned by them; locked until COMMIT.
   * NULL when it is not there, which fails a check as false does.
   */
  const parentHolds = (fk: ForeignKeyModel, withOwner: boolean, user: string, value: string): string => {
    const parent = schema.table(fk.refTable);
    const ok = `(${visibleCondition(schema, parent, 'p', user)})${withOwner ? ` AND ${ownerExpression(schema, parent, 'p')} = ${user}` : ''}`;
    return `(SELECT ${ok} FROM ${q(parent.name)} p WHERE p.${q(fk.refColumn)} = ${value} FOR KEY SHARE OF p)`;
  };
  texts = {
    insert: (table, cols) =>
      once(
        `i\u0000${table.name}\u0000${colsKey(cols)}`,
        () => `INSERT INTO ${q(table.name)} (${columns(cols)}) VALUES (${values(cols)})
           ON CONFLICT (${q(table.primaryKey)}) DO NOTHING RETURNING ${table.columns.map((c) => q(c.name)).join(', ')}`,
      ),
    parentCheck: (fk, withOwner) =>
      once(`p\u0000${fk.refTable}\u0000${fk.refColumn}\u0000${withOwner ? 'o' : '-'}`, () => {
        const parent = schema.table(fk.refTable);
        return `SELECT (${visibleCondition(schema, parent, 'p')}) AS visible, ${withOwner ? ownerExpression(schema, parent, 'p') : 'NULL::text'} AS owner
             FROM ${q(parent.name)} p WHERE p.${q(fk.refColumn)} = $2 FOR KEY SHARE OF p`;
      }),
    // The row as written (`dovetail_row`): its owner column names the user
    // (given after the row's values); the parents of the keys in `merged`
    // are there, visible and, for the key it is owned through, the user's;
    // its other keys hold the values the op gave, whose parents are looked
    // at after the INSERTs (an app's trigger may have changed them).
    guardedInsert: (table, cols, merged) =>
      once(`gi\u0000${table.name}\u0000${colsKey(cols)}\u0000${merged.join('\u0000')}`, () => {
        const owner = table.owner;
        const user = `$${cols.length + 1}`;
        const checks: string[] = [];
        cols.forEach((c, i) => {
          if (table.foreignKeys.some((fk) => fk.column === c.name) && !merged.includes(c.name)) checks.push(`dovetail_row.${q(c.name)} IS NOT DISTINCT FROM $${i + 1}`);
        });
        if (owner.kind === 'column') checks.push(`dovetail_row.${q(owner.column)}::text = ${user}`);
        for (const column of merged) {
          const fk = table.foreignKeys.find((k) => k.column === column) as ForeignKeyModel;
          checks.push(parentHolds(fk, owner.kind === 'through' && owner.column === column, user, `dovetail_row.${q(column)}`));
        }
        const returning = checks.length > 0 ? ` RETURNING ${EXPECT_FUNCTION}(${checks.join(' AND ')})` : '';
        return `INSERT INTO ${q(table.name)} AS dovetail_row (${columns(cols)}) VALUES (${values(cols)})${returning}`;
      }),
    parentGuard: (fk, withOwner) =>
      once(`pg\u0000${fk.refTable}\u0000${fk.refColumn}\u0000${withOwner ? 'o' : '-'}`, () => `SELECT ${EXPECT_FUNCTION}(${parentHolds(fk, withOwner, '$1', '$2')})`),
  };
  textsBySchema.set(schema, texts);
  return texts;
}

/**
 * The look at the parent a key points at, for the user in `$1` and the
 * key's value in `$2`: whether the user may see it, and (`withOwner`) its
 * owner; the parent is locked against deletion until COMMIT. The same
 * statement on both paths of a push.
 */
export function parentCheckSql(schema: Schema, fk: ForeignKeyModel, withOwner: boolean): string {
  return statementTexts(schema).parentCheck(fk, withOwner);
}

/** A checked value as a literal of its column (an untyped literal takes the column's type). */
function literal(c: ColumnModel, value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  switch (c.kind) {
    case 'boolean':
      return value ? 'TRUE' : 'FALSE';
    case 'json':
      return lit(JSON.stringify(value));
    default:
      // Checked: a string for text, a finite number otherwise.
      return lit(typeof value === 'string' ? value : JSON.stringify(value));
  }
}
