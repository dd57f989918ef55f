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
 * A self-reference is checked one level deep (the parent's own rule, not
 * its parents), which is exact for rules that do not depend on the chain.
 */
export function visibleCondition(schema: Schema, table: TableModel, alias: string, user = '$1'): string {
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

  const owned = (t: TableModel, a: string, depth: number): string => {
    if (depth > MAX_DEPTH) return 'FALSE';
    const o = t.owner;
    if (o.kind === 'column') return `${a}.${q(o.column)} = ${user}`;
    const fk = t.foreignKeys.find((k) => k.column === o.column);
    const parent = schema.table(o.table);
    const p = next();
    return `EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = ${a}.${q(o.column)} AND ${owned(parent, p, depth + 1)})`;
  };

  const closed = (t: TableModel, a: string, depth: number): string => {
    const parts = [rule(t, a, depth)];
    for (const fk of t.foreignKeys) {
      if (fk.refTable === t.name) {
        const parent = schema.table(fk.refTable);
        const p = next();
        parts.push(`(${a}.${q(fk.column)} IS NULL OR EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk.refColumn)} = ${a}.${q(fk.column)} AND ${rule(parent, p, depth + 1)}))`);
        continue;
      }
      // The `through` parent is already required by the rule itself.
      if (t.visibility.kind === 'through' && t.visibility.column === fk.column) continue;
      const parent = schema.table(fk.refTable);
      const p = next();
      const nullable = fk.nullable ? `${a}.${q(fk.column)} IS NULL OR ` : '';
      parts.push(`(${nullable}EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk.refColumn)} = ${a}.${q(fk.column)} AND ${depth + 1 > MAX_DEPTH ? 'TRUE' : closed(parent, p, depth + 1)}))`);
    }
    return parts.filter((x) => x !== 'TRUE').join(' AND ') || 'TRUE';
  };

  // The user is always referenced, so every query takes the user parameter.
  return `(${closed(table, alias, 0)}) AND ${user}::text IS NOT NULL`;
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
    const now = rule === 'visible' ? visibleCondition(schema, parent, p, user) : ownedBy(parent, p);
    const then = depth >= MAX_DEPTH ? 'FALSE' : rule === 'visible' ? was(parent, `${c}.old_row`, depth + 1) : ownedThen(parent, `${c}.old_row`, depth + 1);
    return `(EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(ref)} = ${field(img, column)} AND ${now})
      OR (NOT EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(ref)} = ${field(img, column)})
          AND EXISTS (SELECT 1 FROM _dovetail_changes ${c} WHERE ${c}.tbl = ${quoteLiteral(parent.name)} AND ${c}.row_id = ${field(img, column)} AND ${c}.old_row IS NOT NULL AND ${then})))`;
  };

  /** Owned by the user, for a current row (alias `a`). */
  const ownedBy = (t: TableModel, a: string): string => {
    // The owner of a row that is there is what ownership says now.
    const o = t.owner;
    if (o.kind === 'column') return `${a}.${q(o.column)} = ${user}`;
    const parent = schema.table(o.table);
    const fk = t.foreignKeys.find((k) => k.column === o.column);
    const p = next();
    return `EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = ${a}.${q(o.column)} AND ${ownedBy(parent, p)})`;
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
