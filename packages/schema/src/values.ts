import type { ColumnModel } from './model.js';

/**
 * Checks one app value against its column. Returns what is wrong (to be
 * prefixed with `table.column`), or undefined when the value fits. Shared by
 * the device engine and the server so both refuse the same values.
 *
 * @example
 * checkValue({ name: 'rank', kind: 'integer', nullable: false, ... }, 1.5) // 'must be a safe integer, got number 1.5'
 */
export function checkValue(column: ColumnModel, value: unknown): string | undefined {
  if (value === null || value === undefined) return column.nullable ? undefined : 'may not be null';
  switch (column.kind) {
    case 'text':
      return typeof value === 'string' ? undefined : expected('a string', value);
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? undefined : expected('a safe integer', value);
    case 'real':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : expected('a finite number', value);
    case 'boolean':
      return typeof value === 'boolean' ? undefined : expected('true or false', value);
    case 'json':
      return isJson(value, 0) ? undefined : 'must be a JSON value (objects, arrays, strings, finite numbers, booleans, null)';
  }
}

function isJson(value: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJson(v, depth + 1));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).every((v) => isJson(v, depth + 1));
  return false;
}

function expected(what: string, value: unknown): string {
  return `must be ${what}, got ${describeValue(value)}`;
}

/** A short, safe description of a value for error messages. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}'`;
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return `${typeof value} ${String(value)}`;
  try {
    return `${typeof value} ${(JSON.stringify(value) as string | undefined)?.slice(0, 40) ?? ''}`.trim();
  } catch {
    return typeof value;
  }
}
