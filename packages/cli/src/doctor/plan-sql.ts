import { quoteLiteral } from '@dovetail/schema';

/** A parameter value written out as SQL, for reading a plan (never for running it). */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (Array.isArray(v)) return `ARRAY[${v.map(sqlLiteral).join(', ')}]`;
  return quoteLiteral(typeof v === 'string' ? v : JSON.stringify(v));
}

/** `sql` with its placeholders (`?` in order, or `$n`) replaced by the values, for display. */
export function inlineParams(sql: string, params: readonly unknown[], dialect: 'sqlite' | 'postgres'): string {
  if (params.length === 0) return sql;
  if (dialect === 'postgres') return sql.replace(/\$(\d+)/g, (m, n: string) => (Number(n) <= params.length ? sqlLiteral(params[Number(n) - 1]) : m));
  let i = 0;
  return sql.replace(/\?/g, (m) => (i < params.length ? sqlLiteral(params[i++]) : m));
}
