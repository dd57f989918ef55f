import { quoteIdent as q } from '@dovetail/schema';
import type { ColumnModel, ForeignKeyModel, Schema, TableModel } from '@dovetail/schema';
import type { Mutation } from '@dovetail/protocol';
import { checkColumns, tableOf } from './op-checks.js';
import { ownerExpression } from './ownership.js';
import { call } from './script.js';
import type { Call } from './script.js';
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
  if (m.ops.length === 0 || m.ops.length > MAX_SCRIPT_OPS) return undefined;
  const texts = statementTexts(schema);
  const inserts: Call[] = [];
  const checks = new Map<string, Call>();
  try {
    for (const [index, op] of m.ops.entries()) {
      if (op.op !== 'insert') return undefined;
      const table = tableOf(schema, op, index);
      const cols = checkColumns(table, op.row, index, true);
      const id = op.row[table.primaryKey];
      if (typeof id !== 'string' || id.length === 0) return undefined;
      inserts.push(call(texts.insert(table, cols), cols.map((c) => literal(c, op.row[c.name]))));
      for (const fk of table.foreignKeys) {
        const value = op.row[fk.column];
        if (typeof value !== 'string') continue;
        const withOwner = table.owner.kind === 'through' && table.owner.column === fk.column;
        const key = parentKey(fk.refTable, fk.refColumn, value, withOwner);
        if (checks.has(key)) continue;
        checks.set(key, call(texts.parentCheck(fk, withOwner), [lit(userId), lit(value)]));
      }
    }
  } catch {
    return undefined; // a refusal: the ordinary path gives it
  }
  const keys = [...checks.keys()];
  return {
    statements: [...inserts, ...checks.values()],
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

interface StatementTexts {
  insert(table: TableModel, cols: readonly ColumnModel[]): string;
  parentCheck(fk: ForeignKeyModel, withOwner: boolean): string;
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
  texts = {
    insert: (table, cols) =>
      once(
        `i\u0000${table.name}\u0000${cols.map((c) => c.name).join('\u0000')}`,
        () => `INSERT INTO ${q(table.name)} (${cols.map((c) => q(c.name)).join(', ')}) VALUES (${cols.map((c, i) => (c.kind === 'json' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ')})
           ON CONFLICT (${q(table.primaryKey)}) DO NOTHING RETURNING ${table.columns.map((c) => q(c.name)).join(', ')}`,
      ),
    parentCheck: (fk, withOwner) =>
      once(`p\u0000${fk.refTable}\u0000${fk.refColumn}\u0000${withOwner ? 'o' : '-'}`, () => {
        const parent = schema.table(fk.refTable);
        return `SELECT (${visibleCondition(schema, parent, 'p')}) AS visible, ${withOwner ? ownerExpression(schema, parent, 'p') : 'NULL::text'} AS owner
             FROM ${q(parent.name)} p WHERE p.${q(fk.refColumn)} = $2 FOR KEY SHARE OF p`;
      }),
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
