/**
 * Parsers of the parts messages are made of: mutations and their ops,
 * refresh keys, changes, mutation results and their details, rows and
 * JSON values. The rules are those of validate.ts.
 */
import { ChangeKind, MutationStatus, RejectReason } from './messages.js';
import type { Change, MutationResult, PushMutation, RefreshKey, RejectDetails } from './messages.js';
import { OpKind } from './ops.js';
import type { JsonValue, Mutation, Op, RowValues } from './ops.js';
import { IDENTIFIER_PATTERN, WireLimits } from './wire-limits.js';
import { UNSTORABLE_PATTERN, boolean, checkedText, child, describe, fail, field, id, identifier, isIdentifier, isPlainObject, item, list, onlyFields, quoteAll, record, serverRowId, string, text } from './validate-fields.js';
import type { Fields } from './validate-fields.js';

// ---------------------------------------------------------------------------
// Message parts

const OP_KINDS: readonly string[] = Object.values(OpKind);
const OP_FIELDS = {
  insert: ['op', 'table', 'row'],
  upsert: ['op', 'table', 'row'],
  update: ['op', 'table', 'id', 'set'],
  delete: ['op', 'table', 'id'],
} as const satisfies Record<OpKind, readonly string[]>;

const CHANGE_KINDS: readonly string[] = Object.values(ChangeKind);
const REJECT_REASONS: readonly string[] = Object.values(RejectReason);
const STATUSES: readonly string[] = Object.values(MutationStatus);

export function mutation(value: unknown, path: string): Mutation {
  const obj = record(value, path);
  onlyFields(obj, path, ['id', 'name', 'ops']);
  return mutationFields(obj, path);
}

export function pushMutation(value: unknown, path: string): PushMutation {
  const obj = record(value, path);
  onlyFields(obj, path, ['id', 'name', 'ops', 'prev']);
  const m = mutationFields(obj, path);
  if (!Object.hasOwn(obj, 'prev')) return m;
  const prev = obj['prev'];
  return { ...m, prev: prev === null ? null : id(prev, child(path, 'prev')) };
}

function mutationFields(obj: Fields, path: string): Mutation {
  const mutationId = id(field(obj, path, 'id'), child(path, 'id'));
  const name = text(field(obj, path, 'name'), child(path, 'name'), WireLimits.maxNameLength);
  const ops = list(field(obj, path, 'ops'), child(path, 'ops'), op);
  return { id: mutationId, name, ops };
}

function op(value: unknown, path: string): Op {
  const obj = record(value, path);
  const kind = field(obj, path, 'op');
  if (typeof kind !== 'string' || !OP_KINDS.includes(kind)) {
    fail(child(path, 'op'), `must be one of ${quoteAll(OP_KINDS)}, got ${describe(kind)}`);
  }
  const k = kind as OpKind;
  onlyFields(obj, path, OP_FIELDS[k]);
  const table = identifier(field(obj, path, 'table'), child(path, 'table'));
  switch (k) {
    case 'insert':
    case 'upsert':
      return { op: k, table, row: row(field(obj, path, 'row'), child(path, 'row')) };
    case 'update':
      return { op: k, table, id: id(field(obj, path, 'id'), child(path, 'id')), set: row(field(obj, path, 'set'), child(path, 'set')) };
    case 'delete':
      return { op: k, table, id: id(field(obj, path, 'id'), child(path, 'id')) };
  }
}

export function refreshKey(value: unknown, path: string): RefreshKey {
  const obj = record(value, path);
  onlyFields(obj, path, ['table', 'id', 'deep']);
  const table = identifier(field(obj, path, 'table'), `${path}.table`);
  const rowId = serverRowId(field(obj, path, 'id'), `${path}.id`);
  if (!Object.hasOwn(obj, 'deep')) return { table, id: rowId };
  return { table, id: rowId, deep: boolean(obj['deep'], `${path}.deep`) };
}

/**
 * The changes of a pull. A well-formed upsert (nearly every change of a
 * first sync, which may carry hundreds of thousands) is checked in place
 * and kept as it is, without a copy and without building the path strings
 * that only a failure needs; anything else goes through `change`, which
 * names what is wrong.
 */
export function changeList(value: unknown): Change[] {
  if (!Array.isArray(value)) fail('changes', `must be an array, got ${describe(value)}`);
  const out = new Array<Change>(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (isWellFormedUpsert(v)) out[i] = v;
    else if (!Object.hasOwn(value, i)) fail(item('changes', i), 'is a hole in a sparse array, which JSON cannot hold');
    else out[i] = change(v, item('changes', i));
  }
  return out;
}

/** Names (of tables and columns) already matched against the identifier pattern. */
const knownNames = new Set<string>();
const KNOWN_NAMES_MAX = 10_000;

function isKnownName(name: string): boolean {
  if (knownNames.has(name)) return true;
  if (!isIdentifier(name)) return false;
  if (knownNames.size < KNOWN_NAMES_MAX) knownNames.add(name);
  return true;
}

/** An upsert of scalars with valid names: the common case, checked without allocating. */
function isWellFormedUpsert(value: unknown): value is Change {
  if (!isPlainObject(value) || value['op'] !== ChangeKind.Upsert) return false;
  const table = value['table'];
  const row = value['row'];
  if (typeof table !== 'string' || !isPlainObject(row) || !isKnownName(table)) return false;
  let fields = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false;
    fields++;
  }
  if (fields !== 3 || !Object.hasOwn(value, 'op') || !Object.hasOwn(value, 'table') || !Object.hasOwn(value, 'row')) return false;
  for (const key in row) {
    if (!Object.hasOwn(row, key) || !isKnownName(key)) return false;
    const v = row[key];
    if (!(v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && !UNSTORABLE_PATTERN.test(v)))) return false;
  }
  return true;
}

function change(value: unknown, path: string): Change {
  const obj = record(value, path);
  const kind = field(obj, path, 'op');
  if (typeof kind !== 'string' || !CHANGE_KINDS.includes(kind)) {
    fail(child(path, 'op'), `must be one of ${quoteAll(CHANGE_KINDS)}, got ${describe(kind)}`);
  }
  if (kind === ChangeKind.Upsert) {
    onlyFields(obj, path, ['op', 'table', 'row']);
    const table = identifier(field(obj, path, 'table'), child(path, 'table'));
    return { op: ChangeKind.Upsert, table, row: row(field(obj, path, 'row'), child(path, 'row')) };
  }
  onlyFields(obj, path, ['op', 'table', 'id']);
  const table = identifier(field(obj, path, 'table'), child(path, 'table'));
  return { op: ChangeKind.Delete, table, id: serverRowId(field(obj, path, 'id'), child(path, 'id')) };
}

export function mutationResult(value: unknown, path: string): MutationResult {
  const obj = record(value, path);
  const status = field(obj, path, 'status');
  if (typeof status !== 'string' || !STATUSES.includes(status)) {
    fail(child(path, 'status'), `must be one of ${quoteAll(STATUSES)}, got ${describe(status)}`);
  }
  if (status === MutationStatus.Applied) {
    onlyFields(obj, path, ['id', 'status']);
    return { id: id(field(obj, path, 'id'), child(path, 'id')), status: MutationStatus.Applied };
  }
  onlyFields(obj, path, ['id', 'status', 'reason', 'message', 'details']);
  const mutationId = id(field(obj, path, 'id'), child(path, 'id'));
  const reason = field(obj, path, 'reason');
  if (typeof reason !== 'string' || !REJECT_REASONS.includes(reason)) {
    fail(child(path, 'reason'), `must be one of ${quoteAll(REJECT_REASONS)}, got ${describe(reason)}`);
  }
  const message = string(field(obj, path, 'message'), child(path, 'message'));
  const base = { id: mutationId, status: MutationStatus.Rejected, reason: reason as RejectReason, message };
  if (!Object.hasOwn(obj, 'details')) return base;
  return { ...base, details: rejectDetails(obj['details'], child(path, 'details')) };
}

function rejectDetails(value: unknown, path: string): RejectDetails {
  const obj = record(value, path);
  onlyFields(obj, path, ['table', 'column', 'value', 'referencedTable', 'rowId']);
  const out: { -readonly [K in keyof RejectDetails]: RejectDetails[K] } = {};
  if (Object.hasOwn(obj, 'table')) out.table = identifier(obj['table'], child(path, 'table'));
  if (Object.hasOwn(obj, 'column')) out.column = identifier(obj['column'], child(path, 'column'));
  if (Object.hasOwn(obj, 'value')) out.value = jsonValue(obj['value'], child(path, 'value'), 0);
  if (Object.hasOwn(obj, 'referencedTable')) out.referencedTable = identifier(obj['referencedTable'], child(path, 'referencedTable'));
  if (Object.hasOwn(obj, 'rowId')) out.rowId = serverRowId(obj['rowId'], child(path, 'rowId'));
  return out;
}

/** Column values: keys are column names, values are JSON values. */
function row(value: unknown, path: string): RowValues {
  const obj = record(value, path);
  const entries: [string, JsonValue][] = [];
  for (const key of Object.keys(obj)) {
    if (!isIdentifier(key)) fail(child(path, key), `is not a valid column name: names match ${String(IDENTIFIER_PATTERN)} with at most ${WireLimits.maxIdentifierLength} characters`);
    // Nearly every value is a scalar: checked in place, with the path (a
    // string built per value) made only to name a failure. A first sync
    // validates hundreds of thousands of them.
    const v = obj[key];
    if (v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && !UNSTORABLE_PATTERN.test(v))) entries.push([key, v]);
    else entries.push([key, jsonValue(v, child(path, key), 0)]);
  }
  return Object.fromEntries(entries);
}

function jsonValue(value: unknown, path: string, depth: number): JsonValue {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'string') return checkedText(value, path);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(path, `must be a JSON value, got ${describe(value)}`);
    return value;
  }
  if (Array.isArray(value) || isPlainObject(value)) {
    if (depth >= WireLimits.maxValueDepth) fail(path, `nests arrays and objects more than ${WireLimits.maxValueDepth} levels deep`);
  }
  if (Array.isArray(value)) {
    const items: JsonValue[] = [];
    for (let i = 0; i < value.length; i++) {
      if (!Object.hasOwn(value, i)) fail(item(path, i), 'is a hole in a sparse array, which JSON cannot hold');
      items.push(jsonValue(value[i], item(path, i), depth + 1));
    }
    return items;
  }
  if (isPlainObject(value)) {
    if (Object.getOwnPropertySymbols(value).length > 0) fail(path, 'must be a JSON value, got an object with symbol keys');
    const entries: [string, JsonValue][] = [];
    for (const key of Object.keys(value)) {
      const at = child(path, key);
      checkedText(key, `the key of ${at}`);
      entries.push([key, jsonValue(value[key], at, depth + 1)]);
    }
    return Object.fromEntries(entries);
  }
  return fail(path, `must be a JSON value, got ${describe(value)}`);
}
