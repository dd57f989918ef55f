import { quoteIdent as q, quoteLiteral } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';

const MAX_DEPTH = 8;

/**
 * Compiles the schema's visibility rules into a SQL condition on a row of
 * `table` (alias `alias`) for the user in parameter `$1` (or the SQL
 * expression `user`). The condition is
 * closed under keys: a row is visible only if every parent it points at is
 * visible too, so nothing a device receives dangles. Identifiers come only
 * from the schema.
 *
 * Keys to the table itself (replies, subtasks) are followed up the whole
 * chain of ancestors: a row is sent only if every ancestor would be too.
 */
export function visibleCondition(schema: Schema, table: TableModel, alias: string, user = '$1', options: { bulk?: boolean } = {}): string {
  let counter = 0;
  const next = (): string => `v${++counter}`;

  const rule = (t: TableModel, a: string, depth: number): string => {
    if (depth > MAX_DEPTH) return 'FALSE';
    const v = t.visibility;
    switch (v.kind) {
      case 'public':
        return 'TRUE';
      case 'none':
        return 'FALSE';
      case 'owner':
        return owned(t, a, depth);
      case 'through': {
        const fk = t.foreignKeys.find((k) => k.column === v.column);
        const parent = schema.table(v.table);
        const p = next();
        return `EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = ${a}.${q(v.column)} AND ${closed(parent, p, depth + 1)})`;
      }
      case 'members': {
        const m = next();
        return `EXISTS (SELECT 1 FROM ${q(v.table)} ${m} WHERE ${m}.${q(v.key)} = ${a}.${q(t.primaryKey)} AND ${m}.${q(v.user)} = ${user})`;
      }
    }
  };

  const owned = (t: TableModel, a: string, depth: number): string => ownedCondition(schema, t, a, user, next, depth);

  /**
   * The row's own rule, and every parent it points at closed too. Keys to
   * the table itself are followed up the whole chain of ancestors (through
   * any of those keys), each of which must pass the same test, except that
   * their own keys to the table are the chain itself.
   */
  const closed = (t: TableModel, a: string, depth: number, withChain = true): string => {
    const parts = [rule(t, a, depth)];
    const selfKeys = t.foreignKeys.filter((fk) => fk.refTable === t.name);
    if (withChain && selfKeys.length > 0) parts.push(chain(t, a, selfKeys, depth));
    for (const fk of t.foreignKeys) {
      if (fk.refTable === t.name) continue;
      // The `through` parent is already required by the rule itself.
      if (t.visibility.kind === 'through' && t.visibility.column === fk.column) continue;
      const parent = schema.table(fk.refTable);
      const p = next();
      const nullable = fk.nullable ? `${a}.${q(fk.column)} IS NULL OR ` : '';
      parts.push(`(${nullable}EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk.refColumn)} = ${a}.${q(fk.column)} AND ${depth + 1 > MAX_DEPTH ? 'TRUE' : closed(parent, p, depth + 1)}))`);
    }
    return parts.filter((x) => x !== 'TRUE').join(' AND ') || 'TRUE';
  };

  /**
   * No ancestor of the row (by its keys to its own table) is missing or
   * fails `closed`. For a whole table (`bulk`) this is asked the other way
   * round, so Postgres answers it once per query rather than once per row.
   */
  const chain = (t: TableModel, a: string, selfKeys: readonly { column: string; refColumn: string }[], depth: number): string => {
    if (depth > MAX_DEPTH) return 'FALSE';
    const ref = selfKeys[0]?.refColumn ?? t.primaryKey;
    if (selfKeys.some((k) => k.refColumn !== ref)) {
      // Keys to different columns of the table: the parents only, one level.
      return selfKeys
        .map((k) => {
          const p = next();
          return `(${a}.${q(k.column)} IS NULL OR EXISTS (SELECT 1 FROM ${q(t.name)} ${p} WHERE ${p}.${q(k.refColumn)} = ${a}.${q(k.column)} AND ${rule(t, p, depth + 1)}))`;
        })
        .join(' AND ');
    }
    const keys = (alias: string): string => selfKeys.map((k) => `(${alias}.${q(k.column)})`).join(', ');
    if (options.bulk) {
      // Reading a whole table: the rows that fail their own test and
      // everything below them form one set, computed once per query.
      const [bad, x, c, sv] = [next(), next(), next(), next()];
      return `${a}.${q(ref)} NOT IN (
      WITH RECURSIVE ${bad}(id) AS (
        SELECT ${x}.${q(ref)} FROM ${q(t.name)} ${x} WHERE NOT (${closed(t, x, depth + 1, false)})
        UNION
        SELECT ${c}.${q(ref)} FROM ${q(t.name)} ${c} CROSS JOIN LATERAL (VALUES ${keys(c)}) AS ${sv}(v) JOIN ${bad} ON ${bad}.id = ${sv}.v
      )
      SELECT ${bad}.id FROM ${bad})`;
    }
    // A few rows: walk up each one's chain.
    const [up, x, y, sv] = [next(), next(), next(), next()];
    const anyKey = selfKeys.map((k) => `${a}.${q(k.column)} IS NOT NULL`).join(' OR ');
    return `(NOT (${anyKey}) OR NOT EXISTS (
      WITH RECURSIVE ${up}(id) AS (
        SELECT ${sv}.v FROM (VALUES ${keys(a)}) AS ${sv}(v) WHERE ${sv}.v IS NOT NULL
        UNION
        SELECT ${sv}.v FROM ${q(t.name)} ${x} JOIN ${up} ON ${x}.${q(ref)} = ${up}.id CROSS JOIN LATERAL (VALUES ${keys(x)}) AS ${sv}(v) WHERE ${sv}.v IS NOT NULL
      )
      SELECT 1 FROM ${up} LEFT JOIN ${q(t.name)} ${y} ON ${y}.${q(ref)} = ${up}.id
      WHERE ${y}.${q(ref)} IS NULL OR NOT (${closed(t, y, depth + 1, false)})))`;
  };

  // The user is always referenced, so every query takes the user parameter.
  return `(${closed(table, alias, 0)}) AND ${user}::text IS NOT NULL`;
}

/**
 * The row aliased `a` of `t` belongs to the user: its owner column, or up
 * the chain of `through` owners. `next` names the subqueries' aliases.
 */
function ownedCondition(schema: Schema, t: TableModel, a: string, user: string, next: () => string, depth: number): string {
  if (depth > MAX_DEPTH) return 'FALSE';
  const o = t.owner;
  if (o.kind === 'column') return `${a}.${q(o.column)} = ${user}`;
  const fk = t.foreignKeys.find((k) => k.column === o.column);
  const parent = schema.table(o.table);
  const p = next();
  return `EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = ${a}.${q(o.column)} AND ${ownedCondition(schema, parent, p, user, next, depth + 1)})`;
}

/**
 * Whether a row that is gone (its last values in `oldRow`, jsonb) may have
 * been visible to the user, so that its delete is sent to them and to no
 * one else (a delete names an id, and ids are not for everyone):
 * - `owner`: its owner column (or its parent's owner, for an owner
 *   `through` a parent), judged like the parent below;
 * - `through` a parent: the parent as it is now, if it is still there;
 *   otherwise the parent's own last values, judged the same way, up the
 *   chain (a cascade takes a subtree away in one go);
 * - `members`: a membership naming the user, now or in any membership row
 *   the change log still holds;
 * - `public`: everyone (its id was never private).
 * Judging from any retained version errs towards telling a user who once
 * saw the row; a delete of a row a device does not hold is a no-op there.
 */
export function deletedRowCondition(schema: Schema, table: TableModel, oldRow = 'old_row', user = '$1'): string {
  let counter = 0;
  const next = (): string => `dr${++counter}`;
  const field = (img: string, column: string): string => `(${img} ->> ${quoteLiteral(column)})`;

  /** The row of `parentName` that `img`'s `column` points at was visible: now, or in its last values. */
  const parentWas = (t: TableModel, img: string, column: string, parentName: string, depth: number, rule: 'visible' | 'owned'): string => {
    const parent = schema.table(parentName);
    const fk = t.foreignKeys.find((k) => k.column === column);
    const ref = fk?.refColumn ?? parent.primaryKey;
    const p = next();
    const c = next();
    const now = rule === 'visible' ? visibleCondition(schema, parent, p, user) : ownedCondition(schema, parent, p, user, next, depth + 1);
    const then = depth >= MAX_DEPTH ? 'FALSE' : rule === 'visible' ? was(parent, `${c}.old_row`, depth + 1) : ownedThen(parent, `${c}.old_row`, depth + 1);
    return `(EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(ref)} = ${field(img, column)} AND ${now})
      OR (NOT EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(ref)} = ${field(img, column)})
          AND EXISTS (SELECT 1 FROM _dovetail_changes ${c} WHERE ${c}.tbl = ${quoteLiteral(parent.name)} AND ${c}.row_id = ${field(img, column)} AND ${c}.old_row IS NOT NULL AND ${then})))`;
  };

  /** Owned by the user, judged from a row's last values. */
  const ownedThen = (t: TableModel, img: string, depth: number): string => {
    const o = t.owner;
    if (o.kind === 'column') return `${field(img, o.column)} = ${user}`;
    return parentWas(t, img, o.column, o.table, depth, 'owned');
  };

  /** Visible to the user, judged from a row's last values. */
  const was = (t: TableModel, img: string, depth: number): string => {
    const v = t.visibility;
    switch (v.kind) {
      case 'none':
        return 'FALSE';
      case 'public':
        return 'TRUE';
      case 'owner':
        return ownedThen(t, img, depth);
      case 'through':
        return parentWas(t, img, v.column, v.table, depth, 'visible');
      case 'members': {
        const m = next();
        const h = next();
        return `(EXISTS (SELECT 1 FROM ${q(v.table)} ${m} WHERE ${m}.${q(v.key)} = ${field(img, t.primaryKey)} AND ${m}.${q(v.user)} = ${user})
          OR EXISTS (SELECT 1 FROM _dovetail_changes ${h} WHERE ${h}.tbl = ${quoteLiteral(v.table)} AND ${h}.old_row IS NOT NULL
                      AND ${field(`${h}.old_row`, v.key)} = ${field(img, t.primaryKey)} AND ${field(`${h}.old_row`, v.user)} = ${user}))`;
      }
    }
  };

  return `((${was(table, oldRow, 0)}) AND ${user}::text IS NOT NULL)`;
}
