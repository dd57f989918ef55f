import type { KeyRef, ReportValue } from './types.js';

/** A value as the engine's errors show it: strings in single quotes, numbers bare. */
export const shown = (v: ReportValue): string => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));

const cols = (table: string, columns: readonly string[]): string => (columns.length === 1 ? `${table}.${columns[0] ?? ''}` : `${table}.(${columns.join(', ')})`);

/** `posts.owner_id -> users.id` */
export const keyText = (key: KeyRef): string => `${cols(key.table, key.columns)} -> ${cols(key.refTable, key.refColumns)}`;

/** `posts.owner_id = 'u_42' has no users.id`, the sentence the engine's own key errors use. */
export function orphanText(key: KeyRef, values: readonly ReportValue[]): string {
  const value = values.length === 1 ? shown(values[0] ?? null) : `(${values.map(shown).join(', ')})`;
  return `${cols(key.table, key.columns)} = ${value} has no ${cols(key.refTable, key.refColumns)}`;
}

/** A database value in a report: JSON-safe, bytes as hex. */
export function reportValue(v: unknown): ReportValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return `x'${Buffer.from(v).toString('hex')}'`;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A duration for people: `3 days`, `5 hours`, `12 minutes`. */
export function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return plural(s, 'second');
  if (s < 7200) return plural(Math.round(s / 60), 'minute');
  if (s < 172_800) return plural(Math.round(s / 3600), 'hour');
  return plural(Math.round(s / 86_400), 'day');
}
