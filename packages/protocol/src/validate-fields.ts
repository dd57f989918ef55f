/**
 * The field checks every protocol parser shares: scalars and strings (ids,
 * names, cursors, text Postgres can store), objects and lists, and the paths
 * that name the offending field in a `ProtocolError`.
 */
import { ProtocolError } from './protocol-error.js';
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from './protocol-version.js';
import type { ProtocolVersion } from './protocol-version.js';
import { IDENTIFIER_PATTERN, WireLimits } from './wire-limits.js';

// ---------------------------------------------------------------------------
// Scalars

export function version(obj: Fields, path: string, speaker: string): ProtocolVersion {
  const at = child(path, 'protocolVersion');
  const value = field(obj, path, 'protocolVersion');
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(at, `must be an integer, got ${describe(value)}`);
  if (value !== PROTOCOL_VERSION) {
    const versions = SUPPORTED_PROTOCOL_VERSIONS.join(', ');
    const plural = SUPPORTED_PROTOCOL_VERSIONS.length === 1 ? 'version' : 'versions';
    throw new ProtocolError('unsupported_protocol', `protocol version ${value} is not supported; ${speaker} speaks protocol ${plural} ${versions}`, at);
  }
  return PROTOCOL_VERSION;
}

/** Client ids, mutation ids and row ids. */
export function id(value: unknown, path: string): string {
  return text(value, path, WireLimits.maxIdLength);
}

/**
 * A row id the server sends. Rows written straight into Postgres by other
 * code may have longer ids than a client may make, and a client must never
 * get stuck on a pull it cannot read: no length bound here.
 */
export function serverRowId(value: unknown, path: string): string {
  return checkedText(nonEmptyString(value, path), path);
}

export function text(value: unknown, path: string, maxLength: number): string {
  const s = nonEmptyString(value, path);
  const length = codePoints(s, maxLength);
  if (length > maxLength) fail(path, `must be at most ${maxLength} characters, got ${length}`);
  return checkedText(s, path);
}

export function cursorText(value: unknown, path: string): string {
  return text(value, path, WireLimits.maxCursorLength);
}

export function identifier(value: unknown, path: string): string {
  const s = string(value, path);
  if (!isIdentifier(s)) fail(path, `must match ${String(IDENTIFIER_PATTERN)} with at most ${WireLimits.maxIdentifierLength} characters, got ${quote(s)}`);
  return s;
}

export function isIdentifier(s: string): boolean {
  return s.length <= WireLimits.maxIdentifierLength && IDENTIFIER_PATTERN.test(s);
}

export function nonEmptyString(value: unknown, path: string): string {
  const s = string(value, path);
  if (s.length === 0) fail(path, 'must not be empty');
  return s;
}

export function string(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, `must be a string, got ${describe(value)}`);
  return value;
}

export function boolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, `must be true or false, got ${describe(value)}`);
  return value;
}

export function positiveInteger(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail(path, `must be a positive integer, got ${describe(value)}`);
  return value;
}

export function integerBetween(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

// U+0000, or a surrogate that is not half of a pair (with the `u` flag a
// pair is one code point, so only unpaired halves match the range).
export const UNSTORABLE_PATTERN = /\u0000|[\ud800-\udfff]/u;

/** Strings must be valid Unicode without U+0000: Postgres cannot store anything else. */
export function checkedText(s: string, path: string): string {
  const match = UNSTORABLE_PATTERN.exec(s);
  if (match) {
    const unit = match[0].charCodeAt(0);
    if (unit === 0) fail(path, 'contains U+0000, which cannot be stored');
    fail(path, `contains an unpaired surrogate (U+${unit.toString(16).toUpperCase()}), which is not valid Unicode`);
  }
  return s;
}

/** The number of code points in `s`, counted exactly only when it could exceed `max`. */
function codePoints(s: string, max: number): number {
  if (s.length <= max) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// ---------------------------------------------------------------------------
// Objects, lists and paths

export type Fields = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function record(value: unknown, path: string): Fields {
  if (!isPlainObject(value)) fail(path, `must be an object, got ${describe(value)}`);
  return value;
}

export function field(obj: Fields, path: string, key: string, hint = ''): unknown {
  if (!Object.hasOwn(obj, key)) fail(child(path, key), `is required${hint}`);
  return obj[key];
}

export function onlyFields(obj: Fields, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const where = path === '' ? 'the top level' : path;
      throw new ProtocolError('invalid_request', `unknown field ${quote(key)} at ${where} (allowed: ${allowed.join(', ')})`, child(path, key));
    }
  }
}

export function list<T>(value: unknown, path: string, parse: (value: unknown, path: string) => T): T[] {
  if (!Array.isArray(value)) fail(path, `must be an array, got ${describe(value)}`);
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!Object.hasOwn(value, i)) fail(item(path, i), 'is a hole in a sparse array, which JSON cannot hold');
    out.push(parse(value[i], item(path, i)));
  }
  return out;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function child(path: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${path}[${quote(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function item(path: string, index: number): string {
  return `${path}[${index}]`;
}

export function fail(path: string, problem: string): never {
  throw new ProtocolError('invalid_request', `${path === '' ? 'the message' : path} ${problem}`, path);
}

/** A string as JSON, cut to 40 code points so messages stay short. */
export function quote(s: string): string {
  const points = Array.from(s);
  return JSON.stringify(points.length > 40 ? `${points.slice(0, 40).join('')}...` : s);
}

export function quoteAll(values: readonly string[]): string {
  return values.map(quote).join(', ');
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'number':
      return Number.isFinite(value) ? `the number ${value}` : String(value);
    case 'string':
      return `the string ${quote(value)}`;
    case 'boolean':
      return String(value);
    case 'function':
      return 'a function';
    case 'bigint':
      return 'a bigint';
    case 'symbol':
      return 'a symbol';
    default: {
      const proto: unknown = Object.getPrototypeOf(value);
      const ctor: unknown = proto === null || typeof proto !== 'object' ? undefined : (proto as { constructor?: unknown }).constructor;
      const name = typeof ctor === 'function' ? ctor.name : '';
      return name === '' || name === 'Object' ? 'an object' : `an instance of ${name}`;
    }
  }
}
