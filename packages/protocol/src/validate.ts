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
import { MessageType } from './messages.js';
import type {
  ClientMessage,
  ErrorBody,
  Hello,
  PullRequest,
  PullResponse,
  PushRequest,
  PushResponse,
  ServerMessage,
} from './messages.js';
import type { Mutation } from './ops.js';
import { ProtocolError } from './protocol-error.js';
import { WireLimits } from './wire-limits.js';
import { boolean, cursorText, describe, fail, field, id, integerBetween, list, nonEmptyString, onlyFields, positiveInteger, quote, quoteAll, record, string, version } from './validate-fields.js';
import { changeList, mutation, mutationResult, pushMutation, refreshKey } from './validate-parts.js';

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
