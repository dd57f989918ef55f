/**
 * Parsers for every protocol message. Each takes untrusted input (usually
 * the result of `JSON.parse`), checks it completely and returns a fresh,
 * typed copy, or throws a `ProtocolError` naming the offending field.
 *
 * The rules: no unknown fields anywhere a message defines its fields (the top
 * level, mutations, ops, results, changes, details); every field of the right
 * type; ids and names non-empty and at most 200 code points (row ids that
 * the server sends may be longer, see `serverRowId`); table and column
 * names like `posts` or `author_id`; cursors non-empty and at most 1000 code
 * points; column values JSON values (finite numbers, no `undefined`, no
 * functions, no class instances, at most 64 levels deep); every string free of
 * U+0000 and of unpaired surrogates, which Postgres cannot store. Whether a
 * table or column exists, and size limits, are for the server to check.
 */
import { ErrorCodes } from './error-codes.js';
import type { ErrorCode } from './error-codes.js';
import { ChangeKind, MessageType, MutationStatus, RejectReason } from './messages.js';
import type {
  Change,
  ClientMessage,
  ErrorBody,
  Hello,
  MutationResult,
  PullRequest,
  PullResponse,
  PushMutation,
  PushRequest,
  PushResponse,
  RefreshKey,
  RejectDetails,
  ServerMessage,
} from './messages.js';
import { OpKind } from './ops.js';
import type { JsonValue, Mutation, Op, RowValues } from './ops.js';
import { ProtocolError } from './protocol-error.js';
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from './protocol-version.js';
import type { ProtocolVersion } from './protocol-version.js';
import { IDENTIFIER_PATTERN, WireLimits } from './wire-limits.js';

// ---------------------------------------------------------------------------
// Public parsers

/**
 * Parses the body of `POST /v1/push`.
 *
 * @example
 * const request = parsePushRequest(JSON.parse(bodyText));
 * for (const mutation of request.mutations) apply(userId, request.clientId, mutation);
 */
export function parsePushRequest(body: unknown): PushRequest {
  const obj = record(body, '');
  const protocolVersion = version(obj, '', 'the server');
  onlyFields(obj, '', ['protocolVersion', 'clientId', 'schemaVersion', 'mutations']);
  const clientId = id(field(obj, '', 'clientId'), 'clientId');
  const schemaVersion = positiveInteger(field(obj, '', 'schemaVersion'), 'schemaVersion');
  const mutations = list(field(obj, '', 'mutations'), 'mutations', pushMutation);
  return { protocolVersion, clientId, schemaVersion, mutations };
}

/**
 * Parses the body of `POST /v1/pull`.
 *
 * @example
 * const { cursor, limit } = parsePullRequest(JSON.parse(bodyText));
 * const page = await readChanges(userId, cursor, limit ?? 1000);
 */
export function parsePullRequest(body: unknown): PullRequest {
  const obj = record(body, '');
  const protocolVersion = version(obj, '', 'the server');
  onlyFields(obj, '', ['protocolVersion', 'clientId', 'schemaVersion', 'cursor', 'limit', 'refresh']);
  const clientId = id(field(obj, '', 'clientId'), 'clientId');
  const schemaVersion = positiveInteger(field(obj, '', 'schemaVersion'), 'schemaVersion');
  const rawCursor = field(obj, '', 'cursor', ' (null for a first sync)');
  const cursor = rawCursor === null ? null : cursorText(rawCursor, 'cursor');
  const limit = Object.hasOwn(obj, 'limit') ? integerBetween(obj['limit'], 'limit', WireLimits.minPullLimit, WireLimits.maxPullLimit) : undefined;
  const refresh = Object.hasOwn(obj, 'refresh') ? list(obj['refresh'], 'refresh', refreshKey) : undefined;
  if (refresh && refresh.length > WireLimits.maxRefreshKeys) {
    throw new ProtocolError('invalid_request', `refresh has ${refresh.length} keys; at most ${WireLimits.maxRefreshKeys} per pull`);
  }
  return { protocolVersion, clientId, schemaVersion, cursor, ...(limit === undefined ? {} : { limit }), ...(refresh === undefined ? {} : { refresh }) };
}

/**
 * Parses the 200 answer to a push. The caller still checks that result `i`
 * has the id of mutation `i` of its request.
 *
 * @example
 * const { results } = parsePushResponse(await response.json());
 * for (const r of results) if (r.status === 'rejected') console.log(r.id, r.reason, r.message);
 */
export function parsePushResponse(body: unknown): PushResponse {
  const obj = record(body, '');
  onlyFields(obj, '', ['results']);
  return { results: list(field(obj, '', 'results'), 'results', mutationResult) };
}

/**
 * Parses the 200 answer to a pull.
 *
 * @example
 * const page = parsePullResponse(await response.json());
 * await applyInOneTransaction(page.reset, page.changes, page.cursor, page.lastMutationId);
 * if (page.hasMore) schedulePullNow();
 */
export function parsePullResponse(body: unknown): PullResponse {
  const obj = record(body, '');
  onlyFields(obj, '', ['cursor', 'reset', 'changes', 'hasMore', 'lastMutationId']);
  const cursor = cursorText(field(obj, '', 'cursor'), 'cursor');
  const reset = boolean(field(obj, '', 'reset'), 'reset');
  const changes = changeList(field(obj, '', 'changes'));
  const hasMore = boolean(field(obj, '', 'hasMore'), 'hasMore');
  const rawLast = field(obj, '', 'lastMutationId');
  const lastMutationId = rawLast === null ? null : id(rawLast, 'lastMutationId');
  return { cursor, reset, changes, hasMore, lastMutationId };
}

/**
 * Parses a message a client sent on the WebSocket (a Hello).
 *
 * @example
 * socket.once('message', (data) => {
 *   const hello = parseClientMessage(JSON.parse(String(data)));
 *   const userId = verifyToken(hello.token);
 * });
 */
export function parseClientMessage(message: unknown): ClientMessage {
  const obj = record(message, '');
  const protocolVersion = version(obj, '', 'the server');
  const type = field(obj, '', 'type');
  if (type !== MessageType.Hello) fail('type', `must be ${quote(MessageType.Hello)}, got ${describe(type)}`);
  onlyFields(obj, '', ['type', 'protocolVersion', 'clientId', 'token']);
  const clientId = id(field(obj, '', 'clientId'), 'clientId');
  const token = nonEmptyString(field(obj, '', 'token'), 'token');
  const hello: Hello = { type, protocolVersion, clientId, token };
  return hello;
}

/**
 * Parses a message the server sent on the WebSocket: a Welcome, a Poke, or
 * an error body (after which the server closes the socket).
 *
 * @example
 * socket.onmessage = (event) => {
 *   const message = parseServerMessage(JSON.parse(String(event.data)));
 *   if ('error' in message) handleError(message.error.code);
 *   else if (message.type === 'poke') runner.syncSoon();
 * };
 */
export function parseServerMessage(message: unknown): ServerMessage {
  const obj = record(message, '');
  if (!Object.hasOwn(obj, 'type')) {
    if (Object.hasOwn(obj, 'error')) return parseErrorBody(obj);
    fail('', 'must have a "type" field (poke or welcome) or an "error" field');
  }
  const protocolVersion = version(obj, '', 'this client');
  const type = obj['type'];
  if (type !== MessageType.Poke && type !== MessageType.Welcome) {
    fail('type', `must be one of ${quoteAll([MessageType.Poke, MessageType.Welcome])}, got ${describe(type)}`);
  }
  onlyFields(obj, '', ['type', 'protocolVersion']);
  return { type, protocolVersion };
}

/**
 * Parses the body of a non-200 HTTP response.
 *
 * @example
 * if (!response.ok) {
 *   const { error } = parseErrorBody(await response.json());
 *   if (error.code === 'token_expired') await refreshTokenAndRetryOnce();
 * }
 */
export function parseErrorBody(body: unknown): ErrorBody {
  const obj = record(body, '');
  onlyFields(obj, '', ['error']);
  const error = record(field(obj, '', 'error'), 'error');
  onlyFields(error, 'error', ['code', 'message']);
  const code = field(error, 'error', 'code');
  if (typeof code !== 'string' || !Object.hasOwn(ErrorCodes, code)) {
    fail('error.code', `must be a known error code, got ${describe(code)}`);
  }
  const message = string(field(error, 'error', 'message'), 'error.message');
  return { error: { code: code as ErrorCode, message } };
}

/**
 * Parses one mutation on its own, with the same rules as inside a push. A
 * client runs it before a mutation enters the outbox, so that a push can
 * never fail with `invalid_request` because of one bad mutation.
 *
 * @example
 * const mutation = parseMutation({ id: newId(), name: 'createPost', ops });
 */
export function parseMutation(value: unknown): Mutation {
  return mutation(value, '');
}

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

function mutation(value: unknown, path: string): Mutation {
  const obj = record(value, path);
  onlyFields(obj, path, ['id', 'name', 'ops']);
  return mutationFields(obj, path);
}

function pushMutation(value: unknown, path: string): PushMutation {
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

function refreshKey(value: unknown, path: string): RefreshKey {
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
function changeList(value: unknown): Change[] {
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

function mutationResult(value: unknown, path: string): MutationResult {
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

// ---------------------------------------------------------------------------
// Scalars

function version(obj: Fields, path: string, speaker: string): ProtocolVersion {
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
function id(value: unknown, path: string): string {
  return text(value, path, WireLimits.maxIdLength);
}

/**
 * A row id the server sends. Rows written straight into Postgres by other
 * code may have longer ids than a client may make, and a client must never
 * get stuck on a pull it cannot read: no length bound here.
 */
function serverRowId(value: unknown, path: string): string {
  return checkedText(nonEmptyString(value, path), path);
}

function text(value: unknown, path: string, maxLength: number): string {
  const s = nonEmptyString(value, path);
  const length = codePoints(s, maxLength);
  if (length > maxLength) fail(path, `must be at most ${maxLength} characters, got ${length}`);
  return checkedText(s, path);
}

function cursorText(value: unknown, path: string): string {
  return text(value, path, WireLimits.maxCursorLength);
}

function identifier(value: unknown, path: string): string {
  const s = string(value, path);
  if (!isIdentifier(s)) fail(path, `must match ${String(IDENTIFIER_PATTERN)} with at most ${WireLimits.maxIdentifierLength} characters, got ${quote(s)}`);
  return s;
}

function isIdentifier(s: string): boolean {
  return s.length <= WireLimits.maxIdentifierLength && IDENTIFIER_PATTERN.test(s);
}

function nonEmptyString(value: unknown, path: string): string {
  const s = string(value, path);
  if (s.length === 0) fail(path, 'must not be empty');
  return s;
}

function string(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, `must be a string, got ${describe(value)}`);
  return value;
}

function boolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, `must be true or false, got ${describe(value)}`);
  return value;
}

function positiveInteger(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail(path, `must be a positive integer, got ${describe(value)}`);
  return value;
}

function integerBetween(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

// U+0000, or a surrogate that is not half of a pair (with the `u` flag a
// pair is one code point, so only unpaired halves match the range).
const UNSTORABLE_PATTERN = /\u0000|[\ud800-\udfff]/u;

/** Strings must be valid Unicode without U+0000: Postgres cannot store anything else. */
function checkedText(s: string, path: string): string {
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

type Fields = Record<string, unknown>;

function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function record(value: unknown, path: string): Fields {
  if (!isPlainObject(value)) fail(path, `must be an object, got ${describe(value)}`);
  return value;
}

function field(obj: Fields, path: string, key: string, hint = ''): unknown {
  if (!Object.hasOwn(obj, key)) fail(child(path, key), `is required${hint}`);
  return obj[key];
}

function onlyFields(obj: Fields, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const where = path === '' ? 'the top level' : path;
      throw new ProtocolError('invalid_request', `unknown field ${quote(key)} at ${where} (allowed: ${allowed.join(', ')})`, child(path, key));
    }
  }
}

function list<T>(value: unknown, path: string, parse: (value: unknown, path: string) => T): T[] {
  if (!Array.isArray(value)) fail(path, `must be an array, got ${describe(value)}`);
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!Object.hasOwn(value, i)) fail(item(path, i), 'is a hole in a sparse array, which JSON cannot hold');
    out.push(parse(value[i], item(path, i)));
  }
  return out;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function child(path: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${path}[${quote(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

function item(path: string, index: number): string {
  return `${path}[${index}]`;
}

function fail(path: string, problem: string): never {
  throw new ProtocolError('invalid_request', `${path === '' ? 'the message' : path} ${problem}`, path);
}

/** A string as JSON, cut to 40 code points so messages stay short. */
function quote(s: string): string {
  const points = Array.from(s);
  return JSON.stringify(points.length > 40 ? `${points.slice(0, 40).join('')}...` : s);
}

function quoteAll(values: readonly string[]): string {
  return values.map(quote).join(', ');
}

function describe(value: unknown): string {
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
