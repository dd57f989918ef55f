import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePullResponse, parsePushResponse } from '@dovetail/protocol';
import type { Op } from '@dovetail/protocol';
import { createAuthenticator, jsonLogger, startHttpServer, SyncServer } from '@dovetail/server';
import type { Authenticator, RunningServer } from '@dovetail/server';
import { bearer, memoryLogger, openTestDatabase, SECRET, syncServer, truncateAll, wrapSessions } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { call, chunkedBody, expectError, mutation, pullBody, pushBody, within } from './support/http-client.js';
import { serverSchema } from './support/schema.js';
import { RateLimiter } from '../src/rate-limit.js';

const MAX_BODY = 64 * 1024;

let db: TestDatabase;
let sync: Awaited<ReturnType<typeof syncServer>>;
let http: RunningServer;
beforeAll(async () => {
  db = await openTestDatabase();
  console.log(`http tests run on ${db.kind}`);
  sync = await syncServer(serverSchema, db.sql, { limits: { maxMutationsPerPush: 5 } });
  http = await startHttpServer(sync, { port: 0, maxBodyBytes: MAX_BODY });
}, 60_000);
afterAll(async () => {
  await http.close();
  await db.close();
});
beforeEach(async () => {
  await truncateAll(db.sql, serverSchema);
  sync.logs.length = 0;
});

const P = (id: string, owner: string): Op => ({ op: 'insert', table: 'projects', row: { id, owner_id: owner, title: id } });
const T = (id: string, project: string): Op => ({ op: 'insert', table: 'tasks', row: { id, project_id: project, title: id } });
const count = async (table: string): Promise<number> => Number((await db.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table}"`))[0]?.n);

describe('health', () => {
  it('answers GET /health with the database kind', async () => {
    const reply = await call(http.url, '/health');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(reply.body).toEqual({ status: 'ok', database: db.kind, schemaVersion: 1, connectedDevices: 0 });
  });
});

describe('push and pull over HTTP', () => {
  it('pushes with a JSON body and pulls the result back, filtered to the user', async () => {
    const ann = await bearer('ann');
    const create = mutation('createProject', [P('p1', 'ann'), T('t1', 'p1')]);
    const pushed = await call(http.url, '/v1/push', { authorization: ann, json: pushBody('dev-ann', [create]) });
    expect(pushed.status).toBe(200);
    expect(parsePushResponse(pushed.body)).toEqual({ results: [{ id: create.id, status: 'applied' }] });

    const first = await call(http.url, '/v1/pull', { authorization: ann, json: pullBody('dev-ann') });
    expect(first.status).toBe(200);
    const page = parsePullResponse(first.body);
    expect(page).toMatchObject({ reset: true, hasMore: false, lastMutationId: create.id });
    expect(page.changes.map((c) => `${c.table}:${c.op === 'upsert' ? JSON.stringify(c.row['id']) : c.id}`)).toEqual(['users:"ann"', 'projects:"p1"', 'tasks:"t1"']);

    const again = parsePullResponse((await call(http.url, '/v1/pull', { authorization: ann, json: pullBody('dev-ann', page.cursor) })).body);
    expect(again).toMatchObject({ reset: false, changes: [] });

    const bob = parsePullResponse((await call(http.url, '/v1/pull', { authorization: await bearer('bob'), json: pullBody('dev-bob') })).body);
    expect(bob.changes.filter((c) => c.table !== 'users')).toEqual([]);
    expect(bob.lastMutationId).toBeNull();
  });

  it('answers a push of a version it does not speak, or of another schema version, with their codes', async () => {
    const ann = await bearer('ann');
    expectError(await call(http.url, '/v1/push', { authorization: ann, json: { ...pushBody('d', []), protocolVersion: 2 } }), 'unsupported_protocol', /speaks protocol version 1/);
    expectError(await call(http.url, '/v1/pull', { authorization: ann, json: { ...pullBody('d'), schemaVersion: 7 } }), 'schema_mismatch', /update the app/);
  });
});

describe('routes', () => {
  it('answers unknown routes and wrong methods with 404 not_found, before asking for a token', async () => {
    const hint = /the routes are POST \/v1\/push, POST \/v1\/pull, GET \/health/;
    expectError(await call(http.url, '/nope'), 'not_found', hint);
    expectError(await call(http.url, '/v1/push'), 'not_found', hint); // GET
    expectError(await call(http.url, '/v1/pull', { method: 'PUT', raw: '{}' }), 'not_found', hint);
    expectError(await call(http.url, '/v1/pushx', { raw: '{}' }), 'not_found', hint);
    expectError(await call(http.url, '/health', { method: 'DELETE' }), 'not_found', hint);
    expectError(await call(http.url, '/v1/poke'), 'not_found', hint); // a plain GET, not a WebSocket upgrade
  });
});

describe('bodies', () => {
  it('answers a body that is not JSON with 400 invalid_request', async () => {
    const ann = await bearer('ann');
    for (const raw of ['{"protocolVersion": 1,', '', 'null x', '\u00ff\u00fe']) {
      expectError(await call(http.url, '/v1/push', { authorization: ann, raw }), 'invalid_request', /not valid JSON; send one JSON object/);
    }
    expect(await count('_dovetail_ledger')).toBe(0);
  });

  it('answers a key that appears twice with invalid_request (JSON.parse would keep the last one)', async () => {
    const ann = await bearer('ann');
    const raw = '{"protocolVersion":1,"clientId":"a","schemaVersion":1,"clientId":"b","mutations":[]}';
    expectError(await call(http.url, '/v1/push', { authorization: ann, raw }), 'invalid_request', /"clientId" appears twice/);
    const escaped = '{"protocolVersion":1,"clientId":"a","schemaVersion":1,"mutations":[{"id":"m","name":"n","ops":[{"op":"insert","table":"projects","row":{"id":"p","title":"t","\\u0074itle":"u","owner_id":"ann"}}]}]}';
    expectError(await call(http.url, '/v1/push', { authorization: ann, raw: escaped }), 'invalid_request', /"title" appears twice/);
    // The same key in two different objects, and keys inside strings, are fine.
    const fine = '{"protocolVersion":1,"clientId":"a\\"b, \\"clientId\\": x","schemaVersion":1,"mutations":[{"id":"m1","name":"n","ops":[]},{"id":"m2","name":"n","ops":[]}]}';
    expect((await call(http.url, '/v1/push', { authorization: ann, raw: fine })).status).toBe(200);
  });

  it('answers a body over maxBodyBytes with 413 body_too_large, declared or not, and keeps serving', async () => {
    const ann = await bearer('ann');
    const hint = new RegExp(`limit is ${MAX_BODY}: push fewer mutations at once|limit of ${MAX_BODY} bytes: push fewer mutations at once`);
    // With a Content-Length that says so: refused before reading.
    const declared = await call(http.url, '/v1/push', { authorization: ann, raw: JSON.stringify(pushBody('d', [mutation('big', [{ op: 'insert', table: 'projects', row: { id: 'p', owner_id: 'ann', title: 'x'.repeat(MAX_BODY) } }])])) });
    expectError(declared, 'body_too_large', hint);
    // Chunked, with no length: refused once the bytes read pass the limit.
    const chunked = await call(http.url, '/v1/push', { authorization: ann, raw: chunkedBody(64, 16 * 1024) });
    expectError(chunked, 'body_too_large', hint);
    // Exactly at the limit is fine as far as size goes.
    const padded = JSON.stringify(pushBody('d', []));
    const atLimit = await call(http.url, '/v1/push', { authorization: ann, raw: padded + ' '.repeat(MAX_BODY - Buffer.byteLength(padded)) });
    expect(atLimit.status).toBe(200);
    expect(await count('_dovetail_ledger')).toBe(0);
    // A pull over the limit (too many refresh keys) is told what to do instead.
    const keys = Array.from({ length: 2_000 }, (_, i) => ({ table: 'projects', id: `a-project-id-long-enough-${i}` }));
    const pull = await call(http.url, '/v1/pull', { authorization: ann, json: { protocolVersion: 1, clientId: 'dev-ann', schemaVersion: 1, cursor: null, refresh: keys } });
    expectError(pull, 'body_too_large', /ask to refresh fewer rows, or pull with cursor null/);
  });

  it('answers more mutations than the server takes with 413 too_many_mutations, naming the limit, and writes nothing', async () => {
    const ann = await bearer('ann');
    const six = Array.from({ length: 6 }, (_, i) => mutation('p', [P(`p${i}`, 'ann')]));
    expectError(await call(http.url, '/v1/push', { authorization: ann, json: pushBody('dev-ann', six) }), 'too_many_mutations', /at most 5 mutations.*send them in smaller pushes/);
    expect([await count('projects'), await count('_dovetail_ledger'), await count('users')]).toEqual([0, 0, 0]);
    const five = await call(http.url, '/v1/push', { authorization: ann, json: pushBody('dev-ann', six.slice(0, 5)) });
    expect(parsePushResponse(five.body).results).toHaveLength(5);
  });
});

describe('rate limits', () => {
  it('answers 429 rate_limited with Retry-After, per user, until the injected clock moves on', async () => {
    let now = 1_000_000;
    const limited = await startHttpServer(sync, { port: 0, rateLimit: { perSecond: 1, burst: 2 }, now: () => now });
    try {
      const ann = await bearer('ann');
      const pull = (auth: string): ReturnType<typeof call> => call(limited.url, '/v1/pull', { authorization: auth, json: pullBody('dev') });
      expect((await pull(ann)).status).toBe(200);
      expect((await pull(ann)).status).toBe(200);
      const refused = await pull(ann);
      expectError(refused, 'rate_limited', /too many requests; retry in 1 s/);
      expect(refused.headers.get('retry-after')).toBe('1');
      // Pushes count against the same bucket, and nothing is applied.
      expectError(await call(limited.url, '/v1/push', { authorization: ann, json: pushBody('dev', [mutation('p', [P('p1', 'ann')])]) }), 'rate_limited', /retry in/);
      expect(await count('projects')).toBe(0);
      // Another user has a bucket of their own.
      expect((await pull(await bearer('bob'))).status).toBe(200);
      now += 999;
      expect((await pull(ann)).status).toBe(429);
      now += 1;
      expect((await pull(ann)).status).toBe(200);
      expect((await pull(ann)).status).toBe(429);
    } finally {
      await limited.close();
    }
    // A long wait is announced in whole seconds.
    const slow = await startHttpServer(sync, { port: 0, rateLimit: { perSecond: 0.1, burst: 1 }, now: () => now });
    try {
      const ann = await bearer('ann');
      expect((await call(slow.url, '/v1/pull', { authorization: ann, json: pullBody('dev') })).status).toBe(200);
      const refused = await call(slow.url, '/v1/pull', { authorization: ann, json: pullBody('dev') });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('10');
    } finally {
      await slow.close();
    }
  });
});

describe('errors', () => {
  it('answers a failure of the server with 500 internal, logs it, and tells nothing of it', async () => {
    const log = memoryLogger();
    const broken: Authenticator = () => Promise.reject(new Error('secret detail: connection to 10.0.0.7 refused'));
    const failing = await startHttpServer(new SyncServer({ schema: serverSchema, sql: db.sql, authenticate: broken, log }), { port: 0 });
    try {
      const reply = await call(failing.url, '/v1/pull', { authorization: await bearer('ann'), json: pullBody('d') });
      expectError(reply, 'internal', /Retry later/);
      expect(JSON.stringify(reply.body)).not.toContain('10.0.0.7');
      expect(log.lines.some((l) => l.level === 'error' && JSON.stringify(l.fields).includes('10.0.0.7'))).toBe(true);
    } finally {
      await failing.close();
    }
  });
});

describe('graceful close', () => {
  it('lets a request in flight finish, then closes the port', async () => {
    const real = createAuthenticator({ secret: SECRET });
    let arrived: () => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    const authenticate: Authenticator = async (authorization) => {
      const identity = await real(authorization);
      arrived();
      return identity;
    };
    const closing = await startHttpServer(new SyncServer({ schema: serverSchema, sql: db.sql, authenticate }), { port: 0 });
    // The body arrives in two parts: the request is in flight between them.
    const text = new TextEncoder().encode(JSON.stringify(pushBody('dev-ann', [mutation('late', [P('p-late', 'ann')])])));
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        c.enqueue(text.slice(0, 20));
      },
    });
    const reply = call(closing.url, '/v1/push', { authorization: await bearer('ann'), raw: body });
    await within(10_000, 'the request to reach the server', inFlight);
    let closed = false;
    const closed$ = closing.close().then(() => (closed = true));
    // Closing waits for the request; a new connection is refused meanwhile.
    await expect(fetch(`${closing.url}/health`)).rejects.toThrow();
    expect(closed).toBe(false);
    controller?.enqueue(text.slice(20));
    controller?.close();
    const answered = await reply;
    expect(answered.status).toBe(200);
    expect(parsePushResponse(answered.body).results).toEqual([expect.objectContaining({ status: 'applied' })]);
    await within(5_000, 'close() to resolve', closed$);
    await expect(fetch(`${closing.url}/health`)).rejects.toThrow();
    expect(await count('projects')).toBe(1);
  });

  it('finishes a request whose client left while its token was checked (close() does not hang)', async () => {
    const real = createAuthenticator({ secret: SECRET });
    let arrived: () => void = () => undefined;
    const inAuth = new Promise<void>((resolve) => (arrived = resolve));
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const authenticate: Authenticator = async (authorization) => {
      arrived();
      await released;
      return real(authorization);
    };
    const log = memoryLogger();
    const server = await startHttpServer(new SyncServer({ schema: serverSchema, sql: db.sql, authenticate, log }), { port: 0 });
    const abort = new AbortController();
    const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode('{"protocolVersion":1,')) });
    const reply = fetch(`${server.url}/v1/pull`, { method: 'POST', headers: { authorization: await bearer('ann') }, body, duplex: 'half', signal: abort.signal });
    await within(10_000, 'the request to reach the server', inAuth);
    abort.abort();
    await expect(reply).rejects.toThrow(/abort/);
    await new Promise((r) => setTimeout(r, 50)); // let the server see the socket close before the token check ends
    release();
    await within(5_000, 'close() after the client left', server.close());
    expect(log.lines.filter((l) => l.message === 'request')).toEqual([expect.objectContaining({ fields: expect.objectContaining({ status: 400, code: 'invalid_request' }) as unknown })]);
  });

  it.each([
    ['a small answer', 0],
    ['an answer larger than the socket takes at once', 2000],
  ])('finishes a pull whose client left while it was read, with %s (close() does not hang)', async (_, rows) => {
    if (rows > 0) {
      await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', 'Ann') ON CONFLICT DO NOTHING`);
      await db.sql.query(`INSERT INTO projects (id, owner_id, title) SELECT 'big-' || i, 'ann', repeat('x', 100) FROM generate_series(1, ${rows}) AS i`);
    }
    let arrived: () => void = () => undefined;
    const reading = new Promise<void>((resolve) => (arrived = resolve));
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The pull's first script waits until the client has gone.
    const held = wrapSessions(db.sql, (s) => ({
      script: async (text) => {
        arrived();
        await released;
        return s.script(text);
      },
    }));
    const server = await startHttpServer(new SyncServer({ schema: serverSchema, sql: held, authenticate: createAuthenticator({ secret: SECRET }) }), { port: 0 });
    const abort = new AbortController();
    const reply = fetch(`${server.url}/v1/pull`, { method: 'POST', headers: { authorization: await bearer('ann'), 'content-type': 'application/json' }, body: JSON.stringify(pullBody('dev-ann')), signal: abort.signal });
    await within(10_000, 'the pull to reach the database', reading);
    abort.abort();
    await expect(reply).rejects.toThrow(/abort/);
    await new Promise((r) => setTimeout(r, 50)); // let the server see the socket close before it answers
    release();
    await within(5_000, 'close() after the client left', server.close());
  });

  it('closes promptly although clients keep their connections alive', async () => {
    const server = await startHttpServer(sync, { port: 0, maxBodyBytes: 1024 });
    const ann = await bearer('ann');
    // A kept-alive connection, and one whose body was refused before it was read.
    expect((await call(server.url, '/health')).status).toBe(200);
    expect((await call(server.url, '/v1/push', { authorization: ann, raw: chunkedBody(32, 64 * 1024) })).status).toBe(413);
    await within(2_000, 'close() with idle kept-alive connections', server.close());
  });
});

describe('the rate limiter and the log, on their own', () => {
  it('forgets users whose bucket has refilled, so memory does not grow with every user ever seen', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 10, burst: 2 }, () => now);
    for (let i = 0; i < 10_000; i++) limiter.take(`user-${i}`);
    expect(limiter.size).toBe(10_000);
    expect(limiter.take('busy')).toBe(0);
    expect(limiter.take('busy')).toBe(0);
    now += 100; // everyone refilled, except 'busy' (1 of 2)
    expect(limiter.take('newcomer')).toBe(0);
    expect(limiter.size).toBeLessThanOrEqual(2);
    expect(limiter.take('busy')).toBe(0);
    expect(limiter.take('busy')).toBeGreaterThan(0); // 'busy' kept its state
    expect(() => new RateLimiter({ perSecond: 0, burst: 1 }, () => now)).toThrow(/perSecond/);
    expect(() => new RateLimiter({ perSecond: 1, burst: 0 }, () => now)).toThrow(/burst/);
  });

  it('writes one JSON line per entry; fields never hide the level, and odd values never throw', () => {
    const lines: string[] = [];
    const log = jsonLogger((line) => lines.push(line), () => 0);
    log.warn('disk low', { level: 'info', message: 'fake', free: 10n });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    log.error('odd', { cyclic });
    expect(JSON.parse(lines[0] ?? '')).toEqual({ time: '1970-01-01T00:00:00.000Z', level: 'warn', message: 'disk low', free: '10' });
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({ level: 'error', message: 'odd', logError: expect.stringMatching(/could not be written as JSON/) as unknown });
  });
});
