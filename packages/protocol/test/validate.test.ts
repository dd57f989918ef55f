import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseClientMessage,
  parseErrorBody,
  parseMutation,
  parsePullRequest,
  parsePullResponse,
  parsePushRequest,
  parsePushResponse,
  parseServerMessage,
  ProtocolError,
  WireLimits,
} from '@dovetail/protocol';
import type { ErrorBody, Hello, JsonValue, Mutation, Op, PullRequest, PullResponse, PushMutation, PushRequest, PushResponse, RowValues } from '@dovetail/protocol';

// ---------------------------------------------------------------------------
// Fixtures

const push = (): PushRequest => ({
  protocolVersion: 1,
  clientId: 'c_1',
  schemaVersion: 3,
  mutations: [
    {
      id: 'm1',
      name: 'createProject',
      ops: [
        { op: 'insert', table: 'projects', row: { id: 'p1', owner_id: 'u1', title: 'Plan 📋', meta: { tags: ['a', 'b'], n: 1.5, deep: [[{ x: null }]] }, done: false, note: null } },
        { op: 'upsert', table: 'tasks', row: { id: 't1', project_id: 'p1', position: -3 } },
      ],
    },
    {
      id: 'm2',
      name: 'editTask',
      prev: 'm1',
      ops: [
        { op: 'update', table: 'tasks', id: 't1', set: { title: 'x' } },
        { op: 'delete', table: 'comments', id: 'k1' },
      ],
    },
  ],
});

const pull = (): PullRequest => ({ protocolVersion: 1, clientId: 'c_1', schemaVersion: 3, cursor: 'opaque:42', limit: 500 });

const pushResponse = (): PushResponse => ({
  results: [
    { id: 'm1', status: 'applied' },
    { id: 'm2', status: 'rejected', reason: 'parent_deleted', message: "tasks.project_id = 'p1' points at a deleted projects row", details: { table: 'tasks', column: 'project_id', value: 'p1', referencedTable: 'projects', rowId: 't1' } },
    { id: 'm3', status: 'rejected', reason: 'forbidden', message: 'posts p9 belongs to another user' },
  ],
});

const pullResponse = (): PullResponse => ({
  cursor: 'opaque:43',
  reset: false,
  changes: [
    { op: 'upsert', table: 'projects', row: { id: 'p2', owner_id: 'u1', title: 'Q' } },
    { op: 'delete', table: 'comments', id: 'k1' },
  ],
  hasMore: true,
  lastMutationId: 'm2',
});

const hello = (): Hello => ({ type: 'hello', protocolVersion: 1, clientId: 'c_1', token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' });

/** A deep copy that can be changed freely. */
function copy(value: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

/** What a parser threw; fails the test when it threw nothing or something else. */
function rejection(parse: () => unknown): ProtocolError {
  try {
    parse();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError, but the input was accepted');
}

/** A push whose first op is `op` (not type-checked: the point is to send bad input). */
function pushWithOp(op: Record<string, unknown>): Record<string, unknown> {
  const body = copy(push());
  (body['mutations'] as { ops: unknown[] }[])[0]!.ops[0] = op;
  return body;
}

/** A push whose first op is an insert of `row`. */
function pushWithRow(row: Record<string, unknown>): Record<string, unknown> {
  return pushWithOp({ op: 'insert', table: 'projects', row });
}

// ---------------------------------------------------------------------------
// Valid messages

describe('valid messages round-trip through JSON unchanged', () => {
  const cases: [string, unknown, (body: unknown) => unknown][] = [
    ['push', push(), parsePushRequest],
    ['empty push', { ...push(), mutations: [] }, parsePushRequest],
    ['pull', pull(), parsePullRequest],
    ['first pull without limit', { protocolVersion: 1, clientId: 'c_1', schemaVersion: 1, cursor: null }, parsePullRequest],
    ['push response', pushResponse(), parsePushResponse],
    ['empty push response', { results: [] }, parsePushResponse],
    ['pull response', pullResponse(), parsePullResponse],
    ['first pull response', { cursor: 'c', reset: true, changes: [], hasMore: false, lastMutationId: null }, parsePullResponse],
    ['hello', hello(), parseClientMessage],
    ['welcome', { type: 'welcome', protocolVersion: 1 }, parseServerMessage],
    ['poke', { type: 'poke', protocolVersion: 1 }, parseServerMessage],
    ['error body', { error: { code: 'token_expired', message: 'the token expired at 12:00' } } satisfies ErrorBody, parseServerMessage],
    ['error body over HTTP', { error: { code: 'cursor_expired', message: 'resync' } } satisfies ErrorBody, parseErrorBody],
  ];
  it.each(cases)('%s', (_name, message, parse) => {
    const parsed = parse(JSON.parse(JSON.stringify(message)));
    expect(parsed).toStrictEqual(message);
  });

  it('returns a fresh copy, not the input', () => {
    const body = copy(push());
    const parsed = parsePushRequest(body);
    expect(parsed).not.toBe(body);
    expect(parsed.mutations[0]).not.toBe((body['mutations'] as unknown[])[0]);
  });

  it('accepts the bounds themselves', () => {
    const emoji = '😀'.repeat(WireLimits.maxIdLength); // 200 code points, 400 UTF-16 units
    const longest = `a${'_'.repeat(WireLimits.maxIdentifierLength - 1)}`;
    const body = { ...push(), clientId: emoji, mutations: [{ id: 'x'.repeat(200), name: 'n'.repeat(200), ops: [{ op: 'delete', table: longest, id: emoji }] }] };
    expect(parsePushRequest(body)).toStrictEqual(body);
    expect(parsePullRequest({ ...pull(), cursor: 'c'.repeat(WireLimits.maxCursorLength), limit: WireLimits.maxPullLimit }).limit).toBe(10_000);
    expect(parsePullRequest({ ...pull(), limit: 1 }).limit).toBe(1);
  });

  it('keeps a "__proto__" key inside a JSON value as data', () => {
    const body = JSON.parse('{"protocolVersion":1,"clientId":"c","schemaVersion":1,"mutations":[{"id":"m","name":"n","ops":[{"op":"insert","table":"t","row":{"data":{"__proto__":{"polluted":true}}}}]}]}') as unknown;
    const parsed = parsePushRequest(body);
    const op = parsed.mutations[0]?.ops[0];
    const data = op?.op === 'insert' ? (op.row['data'] as Record<string, unknown>) : {};
    expect(Object.keys(data)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('parses a single mutation with paths relative to it', () => {
    const m: Mutation = { id: 'm1', name: 'like', ops: [{ op: 'insert', table: 'reactions', row: { id: 'r1' } }] };
    expect(parseMutation(m)).toStrictEqual(m);
    expect(rejection(() => parseMutation({ ...m, ops: [{ op: 'insert', table: 7, row: {} }] })).message).toBe('ops[0].table must be a string, got the number 7');
  });
});

// ---------------------------------------------------------------------------
// Unknown fields

describe('unknown fields are refused at every level', () => {
  const withExtra = (value: unknown, at: (v: Record<string, unknown>) => Record<string, unknown>): Record<string, unknown> => {
    const body = copy(value);
    at(body)['foo'] = 1;
    return body;
  };
  const mutation = (b: Record<string, unknown>, i: number): Record<string, unknown> => (b['mutations'] as Record<string, unknown>[])[i]!;
  const opOf = (b: Record<string, unknown>, i: number, j: number): Record<string, unknown> => (mutation(b, i)['ops'] as Record<string, unknown>[])[j]!;

  const cases: [string, () => unknown, string][] = [
    ['push, top level', () => parsePushRequest(withExtra(push(), (b) => b)), 'the top level'],
    ['push, mutation', () => parsePushRequest(withExtra(push(), (b) => mutation(b, 1))), 'mutations[1]'],
    ['push, op', () => parsePushRequest(withExtra(push(), (b) => opOf(b, 1, 1))), 'mutations[1].ops[1]'],
    ['pull, top level', () => parsePullRequest(withExtra(pull(), (b) => b)), 'the top level'],
    ['push response, top level', () => parsePushResponse(withExtra(pushResponse(), (b) => b)), 'the top level'],
    ['push response, applied result', () => parsePushResponse(withExtra(pushResponse(), (b) => (b['results'] as Record<string, unknown>[])[0]!)), 'results[0]'],
    ['push response, rejected result', () => parsePushResponse(withExtra(pushResponse(), (b) => (b['results'] as Record<string, unknown>[])[2]!)), 'results[2]'],
    ['push response, details', () => parsePushResponse(withExtra(pushResponse(), (b) => (b['results'] as Record<string, Record<string, unknown>>[])[1]!['details']!)), 'results[1].details'],
    ['pull response, top level', () => parsePullResponse(withExtra(pullResponse(), (b) => b)), 'the top level'],
    ['pull response, upsert', () => parsePullResponse(withExtra(pullResponse(), (b) => (b['changes'] as Record<string, unknown>[])[0]!)), 'changes[0]'],
    ['pull response, delete', () => parsePullResponse(withExtra(pullResponse(), (b) => (b['changes'] as Record<string, unknown>[])[1]!)), 'changes[1]'],
    ['hello', () => parseClientMessage(withExtra(hello(), (b) => b)), 'the top level'],
    ['poke', () => parseServerMessage({ type: 'poke', protocolVersion: 1, foo: 1 }), 'the top level'],
    ['error body', () => parseErrorBody({ error: { code: 'internal', message: 'x' }, foo: 1 }), 'the top level'],
    ['error body, error', () => parseErrorBody({ error: { code: 'internal', message: 'x', foo: 1 } }), 'error'],
  ];
  it.each(cases)('%s', (_name, parse, where) => {
    const e = rejection(parse);
    expect(e.code).toBe('invalid_request');
    expect(e.message).toContain(`unknown field "foo" at ${where}`);
  });

  it('names the fields that are allowed', () => {
    const e = rejection(() => parsePushRequest(withExtra(push(), (b) => mutation(b, 0))));
    expect(e.message).toBe('unknown field "foo" at mutations[0] (allowed: id, name, ops, prev)');
    expect(e.path).toBe('mutations[0].foo');
  });

  it('allows prev in a pushed mutation, but not in an outbox mutation', () => {
    const m = { id: 'm2', name: 'n', ops: [], prev: null };
    expect(parsePushRequest({ ...push(), mutations: [m] }).mutations[0]).toStrictEqual(m);
    expect(rejection(() => parseMutation(m)).message).toBe('unknown field "prev" at the top level (allowed: id, name, ops)');
  });

  it('refuses a field that belongs to another kind of op', () => {
    expect(rejection(() => parsePushRequest(pushWithOp({ op: 'insert', table: 'posts', id: 'p1', row: { id: 'p1' } }))).message).toBe(
      'unknown field "id" at mutations[0].ops[0] (allowed: op, table, row)',
    );
    expect(rejection(() => parsePushRequest(pushWithOp({ op: 'delete', table: 'posts', id: 'p1', row: {} }))).message).toContain('unknown field "row" at mutations[0].ops[0]');
    expect(rejection(() => parsePullResponse({ ...pullResponse(), changes: [{ op: 'delete', table: 't', id: 'x', row: {} }] })).message).toContain('unknown field "row" at changes[0]');
    expect(rejection(() => parsePushResponse({ results: [{ id: 'm', status: 'applied', reason: 'forbidden' }] })).message).toContain('unknown field "reason" at results[0]');
  });

  it('treats an own "__proto__" key as the unknown field it is', () => {
    const body = JSON.parse('{"protocolVersion":1,"clientId":"c","schemaVersion":1,"mutations":[],"__proto__":{}}') as unknown;
    expect(rejection(() => parsePushRequest(body)).message).toContain('unknown field "__proto__" at the top level');
  });
});

// ---------------------------------------------------------------------------
// Wrong types and values

describe('wrong types are refused with the exact path', () => {
  const cases: [string, () => unknown, string][] = [
    ['body not an object', () => parsePushRequest([]), 'the message must be an object, got an array'],
    ['body null', () => parsePullRequest(null), 'the message must be an object, got null'],
    ['body a string', () => parsePushRequest('{}'), 'the message must be an object, got the string "{}"'],
    ['body a class instance', () => parsePushRequest(new (class Body {})()), 'the message must be an object, got an instance of Body'],
    ['clientId', () => parsePushRequest({ ...push(), clientId: 7 }), 'clientId must be a string, got the number 7'],
    ['clientId missing', () => parsePushRequest({ protocolVersion: 1, schemaVersion: 1, mutations: [] }), 'clientId is required'],
    ['schemaVersion string', () => parsePushRequest({ ...push(), schemaVersion: '3' }), 'schemaVersion must be a positive integer, got the string "3"'],
    ['schemaVersion zero', () => parsePullRequest({ ...pull(), schemaVersion: 0 }), 'schemaVersion must be a positive integer, got the number 0'],
    ['schemaVersion fraction', () => parsePullRequest({ ...pull(), schemaVersion: 1.5 }), 'schemaVersion must be a positive integer, got the number 1.5'],
    ['mutations not an array', () => parsePushRequest({ ...push(), mutations: {} }), 'mutations must be an array, got an object'],
    ['mutation not an object', () => parsePushRequest({ ...push(), mutations: [null] }), 'mutations[0] must be an object, got null'],
    ['mutation name missing', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', ops: [] }] }), 'mutations[0].name is required'],
    ['mutation prev', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: 'n', ops: [], prev: 3 }] }), 'mutations[0].prev must be a string, got the number 3'],
    ['mutation prev empty', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: 'n', ops: [], prev: '' }] }), 'mutations[0].prev must not be empty'],
    ['mutation ops not an array', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: 'n', ops: 'insert' }] }), 'mutations[0].ops must be an array, got the string "insert"'],
    ['op not an object', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: 'n', ops: [[]] }] }), 'mutations[0].ops[0] must be an object, got an array'],
    ['op table', () => parsePushRequest(pushWithOp({ op: 'delete', table: 3, id: 'x' })), 'mutations[0].ops[0].table must be a string, got the number 3'],
    ['op row', () => parsePushRequest(pushWithOp({ op: 'upsert', table: 't', row: [1] })), 'mutations[0].ops[0].row must be an object, got an array'],
    ['op set', () => parsePushRequest(pushWithOp({ op: 'update', table: 't', id: 'x', set: null })), 'mutations[0].ops[0].set must be an object, got null'],
    ['op set missing', () => parsePushRequest(pushWithOp({ op: 'update', table: 't', id: 'x' })), 'mutations[0].ops[0].set is required'],
    ['op id', () => parsePushRequest(pushWithOp({ op: 'delete', table: 't', id: 42 })), 'mutations[0].ops[0].id must be a string, got the number 42'],
    ['cursor', () => parsePullRequest({ ...pull(), cursor: 42 }), 'cursor must be a string, got the number 42'],
    ['cursor missing', () => parsePullRequest({ protocolVersion: 1, clientId: 'c', schemaVersion: 1 }), 'cursor is required (null for a first sync)'],
    ['cursor empty', () => parsePullRequest({ ...pull(), cursor: '' }), 'cursor must not be empty'],
    ['limit zero', () => parsePullRequest({ ...pull(), limit: 0 }), 'limit must be an integer from 1 to 10000, got the number 0'],
    ['limit too big', () => parsePullRequest({ ...pull(), limit: 10_001 }), 'limit must be an integer from 1 to 10000, got the number 10001'],
    ['limit null', () => parsePullRequest({ ...pull(), limit: null }), 'limit must be an integer from 1 to 10000, got null'],
    ['results', () => parsePushResponse({ results: null }), 'results must be an array, got null'],
    ['result status', () => parsePushResponse({ results: [{ id: 'm', status: 'ok' }] }), 'results[0].status must be one of "applied", "rejected", got the string "ok"'],
    ['reject reason', () => parsePushResponse({ results: [{ id: 'm', status: 'rejected', reason: 'nope', message: '' }] }), 'results[0].reason must be one of "parent_missing", "parent_deleted", "parent_rejected", "forbidden", "invalid", "conflict", "too_large", "row_not_found", got the string "nope"'],
    ['reject message', () => parsePushResponse({ results: [{ id: 'm', status: 'rejected', reason: 'invalid' }] }), 'results[0].message is required'],
    ['reject details', () => parsePushResponse({ results: [{ id: 'm', status: 'rejected', reason: 'invalid', message: 'x', details: 'posts' }] }), 'results[0].details must be an object, got the string "posts"'],
    ['reject details table', () => parsePushResponse({ results: [{ id: 'm', status: 'rejected', reason: 'invalid', message: 'x', details: { table: 'Posts' } }] }), 'results[0].details.table must match /^[a-z_][a-z0-9_]*$/ with at most 63 characters, got "Posts"'],
    ['pull cursor', () => parsePullResponse({ ...pullResponse(), cursor: null }), 'cursor must be a string, got null'],
    ['reset', () => parsePullResponse({ ...pullResponse(), reset: 'false' }), 'reset must be true or false, got the string "false"'],
    ['hasMore missing', () => parsePullResponse({ cursor: 'c', reset: false, changes: [], lastMutationId: null }), 'hasMore is required'],
    ['lastMutationId', () => parsePullResponse({ ...pullResponse(), lastMutationId: 3 }), 'lastMutationId must be a string, got the number 3'],
    ['change kind', () => parsePullResponse({ ...pullResponse(), changes: [{ op: 'insert', table: 't', row: {} }] }), 'changes[0].op must be one of "upsert", "delete", got the string "insert"'],
    ['change row', () => parsePullResponse({ ...pullResponse(), changes: [{ op: 'upsert', table: 't', row: 'x' }] }), 'changes[0].row must be an object, got the string "x"'],
    ['hello type', () => parseClientMessage({ ...hello(), type: 'poke' }), 'type must be "hello", got the string "poke"'],
    ['hello token', () => parseClientMessage({ ...hello(), token: '' }), 'token must not be empty'],
    ['server message type', () => parseServerMessage({ type: 'hello', protocolVersion: 1 }), 'type must be one of "poke", "welcome", got the string "hello"'],
    ['server message shape', () => parseServerMessage({ protocolVersion: 1 }), 'the message must have a "type" field (poke or welcome) or an "error" field'],
    ['error code', () => parseServerMessage({ error: { code: 'teapot', message: 'x' } }), 'error.code must be a known error code, got the string "teapot"'],
    ['error message', () => parseErrorBody({ error: { code: 'internal', message: null } }), 'error.message must be a string, got null'],
  ];
  it.each(cases)('%s', (_name, parse, message) => {
    const e = rejection(parse);
    expect(e.code).toBe('invalid_request');
    expect(e.message).toBe(message);
  });

  it('puts the path on the error', () => {
    const body = copy(push());
    const ops = (body['mutations'] as { ops: Record<string, unknown>[] }[])[1]!.ops;
    ops[1]!['table'] = null;
    const e = rejection(() => parsePushRequest(body));
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ProtocolError');
    expect(e.path).toBe('mutations[1].ops[1].table');
    expect(e.message).toBe('mutations[1].ops[1].table must be a string, got null');
  });

  it('reports the first problem in document order', () => {
    const body = copy(push());
    const mutations = body['mutations'] as Record<string, unknown>[];
    mutations[0]!['name'] = 1;
    mutations[1]!['id'] = 2;
    expect(rejection(() => parsePushRequest(body)).path).toBe('mutations[0].name');
  });
});

describe('op kinds', () => {
  it.each([['merge'], ['INSERT'], [null], [1]])('refuses op %j', (kind) => {
    const e = rejection(() => parsePushRequest(pushWithOp({ op: kind, table: 't', row: {} })));
    expect(e.code).toBe('invalid_request');
    expect(e.path).toBe('mutations[0].ops[0].op');
    expect(e.message).toMatch(/^mutations\[0\]\.ops\[0\]\.op must be one of "insert", "upsert", "update", "delete", got /);
  });

  it('requires the op field', () => {
    expect(rejection(() => parsePushRequest(pushWithOp({ table: 't', row: {} }))).message).toBe('mutations[0].ops[0].op is required');
  });
});

describe('protocol versions', () => {
  it('answers an unknown version with unsupported_protocol and the versions spoken', () => {
    const e = rejection(() => parsePushRequest({ ...push(), protocolVersion: 2 }));
    expect(e.code).toBe('unsupported_protocol');
    expect(e.message).toBe('protocol version 2 is not supported; the server speaks protocol version 1');
    expect(e.path).toBe('protocolVersion');
  });

  it('checks the version before the fields, so a newer client learns about the version, not a field', () => {
    const e = rejection(() => parsePullRequest({ protocolVersion: 7, clientId: 'c', cursor: null, shape: 'posts' }));
    expect(e.code).toBe('unsupported_protocol');
    expect(rejection(() => parseClientMessage({ type: 'hello', protocolVersion: 0, clientId: 'c', token: 't' })).code).toBe('unsupported_protocol');
  });

  it('says what the client speaks when the server is the one that differs', () => {
    for (const type of ['poke', 'welcome', 'news']) {
      const e = rejection(() => parseServerMessage({ type, protocolVersion: 2 }));
      expect(e.code).toBe('unsupported_protocol');
      expect(e.message).toBe('protocol version 2 is not supported; this client speaks protocol version 1');
    }
  });

  it.each([['1'], [1.5], [null], [undefined]])('refuses protocolVersion %j as malformed', (v) => {
    const e = rejection(() => parsePushRequest({ ...push(), protocolVersion: v }));
    expect(e.code).toBe('invalid_request');
    expect(e.path).toBe('protocolVersion');
  });

  it('requires protocolVersion', () => {
    const { protocolVersion: _, ...rest } = push();
    expect(rejection(() => parsePushRequest(rest)).message).toBe('protocolVersion is required');
  });
});

// ---------------------------------------------------------------------------
// Column values

describe('column values must be JSON values', () => {
  const cases: [string, unknown, string][] = [
    ['a function', () => 1, 'a function'],
    ['NaN', NaN, 'NaN'],
    ['Infinity', Infinity, 'Infinity'],
    ['-Infinity', -Infinity, '-Infinity'],
    ['undefined', undefined, 'undefined'],
    ['a bigint', 10n, 'a bigint'],
    ['a symbol', Symbol('s'), 'a symbol'],
    ['a Date', new Date(0), 'an instance of Date'],
    ['a Map', new Map(), 'an instance of Map'],
  ];
  it.each(cases)('refuses %s in a row', (_name, value, got) => {
    const e = rejection(() => parsePushRequest(pushWithRow({ id: 'p1', title: value })));
    expect(e.code).toBe('invalid_request');
    expect(e.message).toBe(`mutations[0].ops[0].row.title must be a JSON value, got ${got}`);
  });

  it('names the path inside nested values', () => {
    const e = rejection(() => parsePushRequest(pushWithRow({ id: 'p1', meta: { list: [1, 2, NaN] } })));
    expect(e.message).toBe('mutations[0].ops[0].row.meta.list[2] must be a JSON value, got NaN');
    const odd = rejection(() => parsePushRequest(pushWithRow({ id: 'p1', meta: { 'a key': Infinity } })));
    expect(odd.path).toBe('mutations[0].ops[0].row.meta["a key"]');
  });

  it('refuses non-finite numbers in updates and in pulled rows too', () => {
    expect(rejection(() => parsePushRequest(pushWithOp({ op: 'update', table: 't', id: 'x', set: { n: NaN } }))).path).toBe('mutations[0].ops[0].set.n');
    expect(rejection(() => parsePullResponse({ ...pullResponse(), changes: [{ op: 'upsert', table: 't', row: { n: Infinity } }] })).path).toBe('changes[0].row.n');
  });

  it('refuses sparse arrays and symbol keys', () => {
    expect(rejection(() => parsePushRequest(pushWithRow({ list: [1, , 3] }))).message).toBe('mutations[0].ops[0].row.list[1] is a hole in a sparse array, which JSON cannot hold');
    expect(rejection(() => parsePushRequest(pushWithRow({ meta: { [Symbol('k')]: 1 } }))).message).toBe('mutations[0].ops[0].row.meta must be a JSON value, got an object with symbol keys');
  });

  it('refuses values nested too deeply, and cycles, without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < WireLimits.maxValueDepth; i++) deep = [deep];
    expect(parsePushRequest(pushWithRow({ deep })).mutations).toHaveLength(2);
    expect(rejection(() => parsePushRequest(pushWithRow({ deep: [deep] }))).message).toContain('nests arrays and objects more than 64 levels deep');
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    expect(rejection(() => parsePushRequest(pushWithRow({ cycle }))).code).toBe('invalid_request');
  });

  it('refuses column names that are not identifiers', () => {
    const e = rejection(() => parsePushRequest(pushWithRow({ id: 'p1', 'Bad Key': 1 })));
    expect(e.path).toBe('mutations[0].ops[0].row["Bad Key"]');
    expect(e.message).toBe('mutations[0].ops[0].row["Bad Key"] is not a valid column name: names match /^[a-z_][a-z0-9_]*$/ with at most 63 characters');
    expect(rejection(() => parsePushRequest(pushWithRow({ ['c'.repeat(64)]: 1 }))).code).toBe('invalid_request');
  });

  it.each([['Posts'], ['1posts'], ['post-s'], [''], ['t'.repeat(64)], ['pösts']])('refuses the table name %j', (table) => {
    const e = rejection(() => parsePushRequest(pushWithOp({ op: 'delete', table, id: 'x' })));
    expect(e.path).toBe('mutations[0].ops[0].table');
    expect(e.message).toMatch(/must match \/\^\[a-z_\]\[a-z0-9_\]\*\$\/ with at most 63 characters/);
  });
});

describe('strings', () => {
  it.each([
    ['clientId', () => parsePushRequest({ ...push(), clientId: 'c'.repeat(201) }), 'clientId must be at most 200 characters, got 201'],
    ['mutation id', () => parsePushRequest({ ...push(), mutations: [{ id: 'm'.repeat(300), name: 'n', ops: [] }] }), 'mutations[0].id must be at most 200 characters, got 300'],
    ['mutation name', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: 'n'.repeat(201), ops: [] }] }), 'mutations[0].name must be at most 200 characters, got 201'],
    ['op id', () => parsePushRequest(pushWithOp({ op: 'delete', table: 't', id: '😀'.repeat(201) })), 'mutations[0].ops[0].id must be at most 200 characters, got 201'],
    ['lastMutationId', () => parsePullResponse({ ...pullResponse(), lastMutationId: 'x'.repeat(201) }), 'lastMutationId must be at most 200 characters, got 201'],
    ['hello clientId', () => parseClientMessage({ ...hello(), clientId: 'x'.repeat(201) }), 'clientId must be at most 200 characters, got 201'],
    ['cursor', () => parsePullRequest({ ...pull(), cursor: 'c'.repeat(1001) }), 'cursor must be at most 1000 characters, got 1001'],
    ['empty mutation id', () => parsePushRequest({ ...push(), mutations: [{ id: '', name: 'n', ops: [] }] }), 'mutations[0].id must not be empty'],
    ['empty name', () => parsePushRequest({ ...push(), mutations: [{ id: 'm', name: '', ops: [] }] }), 'mutations[0].name must not be empty'],
    ['empty clientId', () => parsePullRequest({ ...pull(), clientId: '' }), 'clientId must not be empty'],
  ])('bounds the length of %s', (_name, parse, message) => {
    const e = rejection(parse);
    expect(e.code).toBe('invalid_request');
    expect(e.message).toBe(message);
  });

  it('accepts longer row ids from the server, which does not make every id (rows written by other code)', () => {
    const long = 'x'.repeat(500);
    const page = { ...pullResponse(), changes: [{ op: 'delete', table: 't', id: long }] };
    expect(parsePullResponse(page)).toStrictEqual(page);
    const results = { results: [{ id: 'm', status: 'rejected', reason: 'forbidden', message: 'no', details: { rowId: long } }] };
    expect(parsePushResponse(results)).toStrictEqual(results);
    expect(rejection(() => parsePullResponse({ ...pullResponse(), changes: [{ op: 'delete', table: 't', id: '' }] })).message).toBe('changes[0].id must not be empty');
    expect(rejection(() => parsePushRequest(pushWithOp({ op: 'update', table: 't', id: long, set: {} }))).message).toBe('mutations[0].ops[0].id must be at most 200 characters, got 500');
  });

  it('refuses U+0000 and unpaired surrogates, which Postgres cannot store', () => {
    expect(rejection(() => parsePushRequest({ ...push(), clientId: 'c\u0000' })).message).toBe('clientId contains U+0000, which cannot be stored');
    expect(rejection(() => parsePushRequest(pushWithRow({ title: 'a\ud800b' }))).message).toBe('mutations[0].ops[0].row.title contains an unpaired surrogate (U+D800), which is not valid Unicode');
    expect(rejection(() => parsePushRequest(pushWithRow({ meta: { ['\udc00']: 1 } }))).code).toBe('invalid_request');
    expect(rejection(() => parsePullResponse({ ...pullResponse(), cursor: '\ud83d' })).path).toBe('cursor');
    expect(parsePushRequest(pushWithRow({ title: 'emoji 😀 fine' })).mutations).toHaveLength(2);
  });

  it('quotes long and odd input briefly in messages', () => {
    const e = rejection(() => parsePushRequest(pushWithOp({ op: 'x'.repeat(500), table: 't' })));
    expect(e.message.length).toBeLessThan(200);
    expect(e.message).toContain(`"${'x'.repeat(40)}..."`);
  });
});

// ---------------------------------------------------------------------------
// Properties

const text = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength, maxLength }).map((s) => s.replaceAll('\u0000', '0'));
const idArb = text(WireLimits.maxIdLength, 1);
const identifierArb = fc.stringMatching(/^[a-z_][a-z0-9_]{0,62}$/);
const { json: jsonArb } = fc.letrec<{ json: JsonValue }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
    text(12),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.oneof(text(8), fc.constant('__proto__')), tie('json')), { maxLength: 4 }).map((entries): JsonValue => Object.fromEntries(entries)),
  ),
}));
const rowArb: fc.Arbitrary<RowValues> = fc.array(fc.tuple(identifierArb, jsonArb), { maxLength: 5 }).map((entries) => Object.fromEntries(entries));
// Plain objects only, as JSON.parse makes them (fc.record may also make null-prototype ones).
const plain = { noNullPrototype: true } as const;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('insert' as const, 'upsert' as const), table: identifierArb, row: rowArb }, plain),
  fc.record({ op: fc.constant('update' as const), table: identifierArb, id: idArb, set: rowArb }, plain),
  fc.record({ op: fc.constant('delete' as const), table: identifierArb, id: idArb }, plain),
);
const mutationArb: fc.Arbitrary<PushMutation> = fc.record(
  { id: idArb, name: text(WireLimits.maxNameLength, 1), ops: fc.array(opArb, { maxLength: 4 }), prev: fc.option(idArb) },
  { ...plain, requiredKeys: ['id', 'name', 'ops'] },
);
const pushArb: fc.Arbitrary<PushRequest> = fc.record(
  {
    protocolVersion: fc.constant(1 as const),
    clientId: idArb,
    schemaVersion: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    mutations: fc.array(mutationArb, { maxLength: 5 }),
  },
  plain,
);

const FIELDS: Record<string, readonly string[]> = {
  insert: ['op', 'table', 'row'],
  upsert: ['op', 'table', 'row'],
  update: ['op', 'table', 'id', 'set'],
  delete: ['op', 'table', 'id'],
};

/** Every object of a push that defines its own fields, with where it is and which fields it has. */
function places(body: Record<string, unknown>): { where: string; target: Record<string, unknown>; allowed: readonly string[] }[] {
  const out: { where: string; target: Record<string, unknown>; allowed: readonly string[] }[] = [
    { where: 'the top level', target: body, allowed: ['protocolVersion', 'clientId', 'schemaVersion', 'mutations'] },
  ];
  (body['mutations'] as Record<string, unknown>[]).forEach((m, i) => {
    out.push({ where: `mutations[${i}]`, target: m, allowed: ['id', 'name', 'ops', 'prev'] });
    (m['ops'] as Record<string, unknown>[]).forEach((o, j) => {
      out.push({ where: `mutations[${i}].ops[${j}]`, target: o, allowed: FIELDS[String(o['op'])] ?? [] });
    });
  });
  return out;
}

describe('properties', () => {
  it('any valid push survives JSON.stringify -> JSON.parse -> parsePushRequest unchanged', () => {
    fc.assert(
      fc.property(pushArb, (request) => {
        expect(parsePushRequest(JSON.parse(JSON.stringify(request)))).toStrictEqual(request);
      }),
      { numRuns: 300 },
    );
  });

  it('one unknown key anywhere makes a valid push fail with invalid_request, naming where', () => {
    fc.assert(
      fc.property(pushArb, fc.nat(), fc.string({ unit: 'binary', maxLength: 12 }), jsonArb, (request, pick, key, value) => {
        const body = copy(request);
        const all = places(body);
        const place = all[pick % all.length]!;
        fc.pre(!place.allowed.includes(key));
        Object.defineProperty(place.target, key, { value, enumerable: true, writable: true, configurable: true });
        const e = rejection(() => parsePushRequest(JSON.parse(JSON.stringify(body))));
        expect(e.code).toBe('invalid_request');
        expect(e.message).toContain('unknown field ');
        expect(e.message).toContain(` at ${place.where} (allowed: `);
      }),
      { numRuns: 300 },
    );
  });
});
