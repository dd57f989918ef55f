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
 * Whether a deleted row (its last values) was visible to the user, judged
 * from its own columns: the owner column for `owner` rules. Rows visible
 * through a parent or a membership are judged by their parent's current
 * row when it still exists, and otherwise sent (a delete of a row the
 * device never had is a no-op there).
 */
export function deletedRowCondition(schema: Schema, table: TableModel, oldRow = 'old_row', user = '$1'): string {
  const v = table.visibility;
  if (v.kind === 'none') return `${user}::text IS NULL`;
  if (v.kind === 'owner' && table.owner.kind === 'column') return `(${oldRow} ->> ${quoteLiteral(table.owner.column)}) = ${user}`;
  if (v.kind === 'through') {
    const parent = schema.table(v.table);
    const fk = table.foreignKeys.find((k) => k.column === v.column);
    const p = 'dp';
    return `(NOT EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = (${oldRow} ->> ${quoteLiteral(v.column)})) OR EXISTS (SELECT 1 FROM ${q(parent.name)} ${p} WHERE ${p}.${q(fk?.refColumn ?? parent.primaryKey)} = (${oldRow} ->> ${quoteLiteral(v.column)}) AND ${visibleCondition(schema, parent, p, user)}))`;
  }
  return `${user}::text IS NOT NULL`;
}
