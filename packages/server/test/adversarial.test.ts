import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePullResponse, parsePushResponse } from '@dovetail/protocol';
import type { Mutation, Op } from '@dovetail/protocol';
import { createAuthenticator, startHttpServer, SyncServer } from '@dovetail/server';
import type { MutationResult, RunningServer } from '@dovetail/server';
import { bearer, memoryLogger, openTestDatabase, SECRET, syncServer, tokenFor, truncateAll } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { call, expectError, mutation, pullBody, pushBody } from './support/http-client.js';
import type { Reply } from './support/http-client.js';
import { serverSchema } from './support/schema.js';

/**
 * Hostile traffic over HTTP. For each attempt: its own error code, nothing
 * written (the tables and the engine's own tables are read back directly),
 * no 23503 and no 500 in the log, and the server keeps serving.
 */

const MAX_BODY = 1024 * 1024;
const MAX_MUTATION_BYTES = 64 * 1024;

let db: TestDatabase;
let sync: Awaited<ReturnType<typeof syncServer>>;
let http: RunningServer;
beforeAll(async () => {
  db = await openTestDatabase();
  console.log(`adversarial tests run on ${db.kind}`);
  sync = await syncServer(serverSchema, db.sql, { limits: { maxMutationsPerPush: 20, maxMutationBytes: MAX_MUTATION_BYTES } });
  http = await startHttpServer(sync, { port: 0, maxBodyBytes: MAX_BODY });
}, 60_000);
afterAll(async () => {
  await http.close();
  await db.close();
});

const P = (id: string, owner: string): Op => ({ op: 'insert', table: 'projects', row: { id, owner_id: owner, title: id } });
const T = (id: string, project: string): Op => ({ op: 'insert', table: 'tasks', row: { id, project_id: project, title: id } });

const push = (authorization: string | undefined, body: unknown, clientId = 'dev'): Promise<Reply> =>
  call(http.url, '/v1/push', { ...(authorization === undefined ? {} : { authorization }), json: body ?? pushBody(clientId, []) });
const pushRaw = (authorization: string, raw: string): Promise<Reply> => call(http.url, '/v1/push', { authorization, raw });

async function pushAs(user: string, mutations: Mutation[], clientId = `dev-${user}`): Promise<MutationResult[]> {
  const reply = await push(await bearer(user), pushBody(clientId, mutations));
  expect(reply.status).toBe(200);
  return parsePushResponse(reply.body).results as MutationResult[];
}

beforeEach(async () => {
  await truncateAll(db.sql, serverSchema);
  sync.logs.length = 0;
  // Bob's private project with a task and his conversation; Ann's project with a task.
  const bob = await pushAs('bob', [
    mutation('bobs', [
      P('pb', 'bob'),
      T('tb', 'pb'),
      { op: 'insert', table: 'conversations', row: { id: 'cb', created_by: 'bob' } },
      { op: 'insert', table: 'members', row: { id: 'mb', conversation_id: 'cb', user_id: 'bob' } },
    ]),
  ]);
  const ann = await pushAs('ann', [mutation('anns', [P('pa', 'ann'), T('ta', 'pa')])]);
  expect([...bob, ...ann].map((r) => r.status)).toEqual(['applied', 'applied']);
});

afterEach(() => {
  // Never a 23503 and never a 500, whatever came in.
  expect(sync.logs.filter((l) => l.fields['sqlstate'] === '23503')).toEqual([]);
  expect(sync.logs.filter((l) => l.level === 'error')).toEqual([]);
});

interface Snapshot {
  tables: Record<string, unknown[]>;
  ledger: unknown[];
  refused: unknown[];
  changes: string | undefined;
}

/** Every row of every table, the ledger, the refused rows and how many changes were captured. */
async function snapshot(): Promise<Snapshot> {
  const tables: Record<string, unknown[]> = {};
  for (const t of serverSchema.tables) tables[t.name] = await db.sql.query(`SELECT * FROM "${t.name}" ORDER BY id`);
  const ledger = await db.sql.query('SELECT client_id, mutation_id, user_id, result FROM _dovetail_ledger ORDER BY client_id, seq');
  const refused = await db.sql.query('SELECT client_id, tbl, row_id FROM _dovetail_refused ORDER BY client_id, tbl, row_id');
  const changes = (await db.sql.query<{ n: string }>('SELECT count(*)::text AS n FROM _dovetail_changes'))[0]?.n;
  return { tables, ledger, refused, changes };
}

/** Nothing at all was written. */
async function expectNothingWritten(before: Snapshot): Promise<void> {
  expect(await snapshot()).toEqual(before);
}

/**
 * No row of any table changed and no change was captured; the ledger holds
 * only the refusals of `refused` (by mutation id, with their reason), as it
 * must to answer a replay with the same refusal.
 */
async function expectOnlyRefusals(before: Snapshot, refused: Record<string, string>): Promise<void> {
  const after = await snapshot();
  expect(after.tables).toEqual(before.tables);
  expect(after.changes).toBe(before.changes);
  const kept = new Set(before.ledger.map((l) => JSON.stringify(l)));
  const added = after.ledger.filter((l) => !kept.has(JSON.stringify(l))) as { mutation_id: string; result: MutationResult }[];
  expect(after.ledger.length - added.length).toBe(before.ledger.length);
  expect(Object.fromEntries(added.map((l) => [l.mutation_id, l.result.status === 'rejected' ? l.result.reason : l.result.status]))).toEqual(refused);
}

let served = 0;
/** A normal push and pull work right after. */
async function stillServes(): Promise<void> {
  const id = `carol-p${++served}`;
  const auth = await bearer('carol');
  expect(await pushAs('carol', [mutation('fine', [P(id, 'carol')])])).toEqual([expect.objectContaining({ status: 'applied' })]);
  const pulled = await call(http.url, '/v1/pull', { authorization: auth, json: pullBody('dev-carol') });
  expect(pulled.status).toBe(200);
  expect(parsePullResponse(pulled.body).changes).toContainEqual({ op: 'upsert', table: 'projects', row: { id, owner_id: 'carol', title: id } });
}

// ---------------------------------------------------------------------------

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600;
const key = new TextEncoder().encode(SECRET);

/** Pushes, under `authorization`, a project for `sub` (what an accepted token would write). */
const attempt = (authorization: string | undefined, sub = 'mallory'): Promise<Reply> => push(authorization, pushBody(`dev-${sub}`, [mutation('claim', [P(`p-${sub}`, sub)])]));

describe('tokens', () => {
  it('refuses alg none, in any spelling, crafted by hand', async () => {
    const before = await snapshot();
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = `${b64({ alg, typ: 'JWT' })}.${b64({ sub: 'mallory', role: 'authenticated', exp: inAnHour() })}.`;
      expectError(await attempt(`Bearer ${token}`), 'token_invalid', /do not retry with it: get a new token/);
      // A real user's name in a none token gets nothing either.
      const asAnn = `${b64({ alg, typ: 'JWT' })}.${b64({ sub: 'ann', exp: inAnHour() })}.`;
      expectError(await attempt(`Bearer ${asAnn}`, 'ann'), 'token_invalid', /refused/);
    }
    await expectNothingWritten(before);
    await stillServes();
  });

  it('refuses a bad signature: another secret, a tampered payload, an HS256 header with no signature', async () => {
    const before = await snapshot();
    const otherSecret = await tokenFor('mallory', { secret: 'another-secret-that-is-also-long-enough-for-hs256' });
    expectError(await attempt(`Bearer ${otherSecret}`), 'token_invalid', /signature verification failed.*get a new token/);
    // Ann's real token with its payload swapped for Bob's.
    const [header, , signature] = (await tokenFor('ann')).split('.');
    const tampered = `${header}.${b64({ sub: 'bob', role: 'authenticated', exp: inAnHour() })}.${signature}`;
    expectError(await attempt(`Bearer ${tampered}`, 'bob'), 'token_invalid', /get a new token/);
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'mallory', exp: inAnHour() })}.`;
    expectError(await attempt(`Bearer ${unsigned}`), 'token_invalid', /get a new token/);
    for (const junk of ['not-a-jwt', 'a.b.c', 'eyJ.eyJ.eyJ']) expectError(await attempt(`Bearer ${junk}`), 'token_invalid', /get a new token/);
    await expectNothingWritten(before);
    await stillServes();
  });

  it('answers an expired token with token_expired, distinct from token_invalid', async () => {
    const before = await snapshot();
    const expired = await tokenFor('ann', { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    expectError(await attempt(`Bearer ${expired}`, 'ann'), 'token_expired', /refresh it through the app and retry/);
    expectError(await call(http.url, '/v1/pull', { authorization: `Bearer ${expired}`, json: pullBody('dev-ann') }), 'token_expired', /refresh/);
    // The signature is checked first: an expired token with a bad signature is not worth refreshing.
    const expiredForged = await tokenFor('ann', { expiresIn: Math.floor(Date.now() / 1000) - 60, secret: 'another-secret-that-is-also-long-enough-for-hs256' });
    expectError(await attempt(`Bearer ${expiredForged}`, 'ann'), 'token_invalid', /refused/);
    // Not valid yet is invalid, not expired.
    const early = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ann').setNotBefore('1h').setExpirationTime('2h').sign(key);
    expectError(await attempt(`Bearer ${early}`, 'ann'), 'token_invalid', /refused/);
    await expectNothingWritten(before);
  });

  it('refuses a validly signed token that never expires', async () => {
    const before = await snapshot();
    const forever = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').setIssuedAt().sign(key);
    expectError(await attempt(`Bearer ${forever}`), 'token_invalid', /exp/);
    await expectNothingWritten(before);
    await stillServes();
  });

  it('refuses a token without a usable sub', async () => {
    const before = await snapshot();
    const noSub = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(key);
    const emptySub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('').setExpirationTime('1h').sign(key);
    const numberSub = await new SignJWT({ sub: 42 } as unknown as JWTPayload).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
    for (const token of [noSub, emptySub, numberSub]) expectError(await attempt(`Bearer ${token}`), 'token_invalid', /sub/);
    await expectNothingWritten(before);
    await stillServes();
  });

  it('answers anything but "Bearer <token>" with unauthorized; the scheme is case-insensitive', async () => {
    const before = await snapshot();
    const token = await tokenFor('mallory');
    const headers = [undefined, '', 'Bearer', 'Bearer ', `Basic ${Buffer.from('mallory:pw').toString('base64')}`, `Token ${token}`, token, `Bearer ${token} ${token}`, `Bearer "${token}"`, `Bearer ${token}\u00a0`];
    for (const h of headers) expectError(await attempt(h), 'unauthorized', /send "Authorization: Bearer <JWT>"/);
    // A token in the query string is not a token.
    expectError(await call(http.url, `/v1/push?access_token=${token}`, { json: pushBody('dev-mallory', []) }), 'unauthorized', /Bearer/);
    await expectNothingWritten(before);
    // RFC 7235: "bearer" is the same scheme.
    expect((await attempt(`bearer ${token}`)).status).toBe(200);
    expect(await db.sql.query('SELECT id, owner_id FROM projects WHERE id = $1', ['p-mallory'])).toEqual([{ id: 'p-mallory', owner_id: 'mallory' }]);
  });

  it('with a key set (JWKS): accepts its algorithm only, and a key set it cannot fetch is the server\'s problem', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    const log = memoryLogger();
    const withJwks = await startHttpServer(new SyncServer({ schema: serverSchema, sql: db.sql, authenticate: createAuthenticator({ jwksUrl }), log }), { port: 0 });
    try {
      const pull = (token: string): Promise<Reply> => call(withJwks.url, '/v1/pull', { authorization: `Bearer ${token}`, json: pullBody('dev-ann') });
      const good = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('ann').setExpirationTime('1h').sign(privateKey);
      expect((await pull(good)).status).toBe(200);
      // Algorithm confusion: HS256 "signed" with the public key as the secret.
      const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setSubject('ann').setExpirationTime('1h').sign(new TextEncoder().encode(JSON.stringify(jwk)));
      expectError(await pull(confused), 'token_invalid', /refused/);
      expectError(await pull(`${b64({ alg: 'none', kid: 'k1' })}.${b64({ sub: 'ann', exp: inAnHour() })}.`), 'token_invalid', /refused/);
      // Signed by a key that is not in the set.
      const stranger = (await generateKeyPair('ES256')).privateKey;
      expectError(await pull(await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k2' }).setSubject('ann').setExpirationTime('1h').sign(stranger)), 'token_invalid', /refused/);
      // The key set cannot be fetched: retry later (500), not "your token is bad" (which tells the client to stop).
      const stopped = new Promise<void>((resolve) => jwksServer.close(() => resolve()));
      jwksServer.closeAllConnections();
      await stopped;
      const unreachable = createAuthenticator({ jwksUrl });
      await expect(unreachable(`Bearer ${good}`)).rejects.toMatchObject({ code: 'internal', message: expect.stringMatching(/retry later/) as unknown });
    } finally {
      await withJwks.close();
      if (jwksServer.listening) jwksServer.close();
    }
  });
});

describe('rows that belong to someone else (G12, I2)', () => {
  it("refuses changing Bob's rows with Ann's token, and moving Ann's rows to Bob: forbidden, or a missing parent where the parent is one Ann may not see", async () => {
    const before = await snapshot();
    const attempts = [
      mutation('renameBobsProject', [{ op: 'update', table: 'projects', id: 'pb', set: { title: 'mine now' } }]),
      mutation('deleteBobsTask', [{ op: 'delete', table: 'tasks', id: 'tb' }]),
      mutation('taskInBobsProject', [T('t-in-pb', 'pb')]),
      mutation('upsertBobsProject', [{ op: 'upsert', table: 'projects', row: { id: 'pb', owner_id: 'ann', title: 'taken' } }]),
      mutation('renameBob', [{ op: 'update', table: 'users', id: 'bob', set: { name: 'hacked' } }]),
      mutation('projectForBob', [P('p-for-bob', 'bob')]),
      mutation('giveProjectToBob', [{ op: 'update', table: 'projects', id: 'pa', set: { owner_id: 'bob' } }]),
      mutation('moveTaskToBob', [{ op: 'update', table: 'tasks', id: 'ta', set: { project_id: 'pb' } }]),
      mutation('commentAsBob', [{ op: 'insert', table: 'comments', row: { id: 'k1', task_id: 'ta', author_id: 'bob', body: 'I did not write this' } }]),
      mutation('joinBobsChat', [{ op: 'insert', table: 'members', row: { id: 'm-ann', conversation_id: 'cb', user_id: 'ann' } }]),
      mutation('deleteBob', [{ op: 'delete', table: 'users', id: 'bob' }]),
      // Hidden inside an otherwise fine mutation: the whole mutation goes.
      mutation('mixed', [P('p-ok', 'ann'), { op: 'update', table: 'projects', id: 'pb', set: { title: 'x' } }]),
    ];
    // Rows placed under a parent Ann cannot see are answered like a missing
    // parent, so the refusal does not reveal that Bob's rows exist.
    const hidden = new Set(['taskInBobsProject', 'moveTaskToBob']);
    const expected = attempts.map((m) => (hidden.has(m.name) ? 'parent_missing' : 'forbidden'));
    const results = await pushAs('ann', attempts);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual(expected);
    await expectOnlyRefusals(before, Object.fromEntries(attempts.map((m, i) => [m.id, expected[i] ?? ''])));
    await stillServes();
  });

  it('refuses a row under a parent the writer may not see, without saying it exists', async () => {
    const before = await snapshot();
    const attempts = [
      mutation('postIntoBobsChat', [{ op: 'insert', table: 'messages', row: { id: 'spam1', conversation_id: 'cb', sender_id: 'ann', body: 'hi Bob' } }]),
      mutation('commentOnBobsTask', [{ op: 'insert', table: 'comments', row: { id: 'spam2', task_id: 'tb', author_id: 'ann', body: 'hi Bob' } }]),
    ];
    const results = await pushAs('ann', attempts);
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/^(forbidden|parent_missing)$/) as unknown });
    const after = await snapshot();
    expect(after.tables).toEqual(before.tables);
  });

  it("refuses Bob's device id under Ann's token (403 forbidden) and writes nothing", async () => {
    const before = await snapshot();
    const reply = await push(await bearer('ann'), pushBody('dev-bob', [mutation('p', [P('p-sneaky', 'ann')])]));
    expectError(reply, 'forbidden', /pushes only under its own user's token/);
    await expectNothingWritten(before);
    await stillServes();
  });

  it("refuses a pull with Bob's device id under Ann's token", async () => {
    const reply = await call(http.url, '/v1/pull', { authorization: await bearer('ann'), json: pullBody('dev-bob') });
    expect(reply.body).not.toMatchObject({ lastMutationId: expect.stringMatching(/^bobs-/) as unknown });
    expectError(reply, 'forbidden', /another user/);
  });
});

describe('names that are not in the schema, or carry SQL (G12)', () => {
  it('refuses malformed table and column names at validation, naming the field', async () => {
    const before = await snapshot();
    const ann = await bearer('ann');
    const cases: [Op, RegExp][] = [
      [{ op: 'insert', table: 'projects; DROP TABLE users; --', row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'delete', table: 'users WHERE 1=1', id: 'x' }, /ops\[0\]\.table/],
      [{ op: 'insert', table: 'projects"', row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'insert', table: "projects'", row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'insert', table: 'public.projects', row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'insert', table: 'Projects', row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'insert', table: 'p'.repeat(64), row: { id: 'x' } }, /ops\[0\]\.table/],
      [{ op: 'insert', table: 'projects', row: { id: 'x', owner_id: 'ann', title: 't', 'title" = \'x\'; --': 'y' } }, /ops\[0\]\.row/],
      [{ op: 'update', table: 'projects', id: 'pa', set: { 'title"': 'y' } }, /ops\[0\]\.set/],
      [{ op: 'update', table: 'projects', id: 'pa', set: { "owner_id = 'bob' --": 'y' } }, /ops\[0\]\.set/],
      [{ op: 'update', table: 'projects', id: 'pa', set: { 'ti tle': 'y' } }, /ops\[0\]\.set/],
    ];
    for (const [op, field] of cases) {
      const reply = await push(ann, pushBody('dev-ann', [mutation('sql', [op])]));
      expectError(reply, 'invalid_request', field);
    }
    await expectNothingWritten(before);
    await stillServes();
  });

  it('refuses well-formed names that are not synced tables or columns as invalid, never executed', async () => {
    const before = await snapshot();
    const attempts = [
      mutation('ledger', [{ op: 'insert', table: '_dovetail_ledger', row: { id: 'x' } }]),
      mutation('meta', [{ op: 'delete', table: '_dovetail_meta', id: 'pruned_xid' }]),
      mutation('catalog', [{ op: 'update', table: 'pg_authid', id: 'x', set: { rolsuper: true } }]),
      mutation('proto', [{ op: 'insert', table: 'constructor', row: { id: 'x' } }]),
      mutation('systemColumn', [{ op: 'update', table: 'projects', id: 'pa', set: { xmin: 1 } }]),
      mutation('constructorColumn', [{ op: 'update', table: 'projects', id: 'pa', set: { constructor: 'x' } }]),
    ];
    const results = await pushAs('ann', attempts);
    // "__proto__" as a column: JSON.parse makes it a key like any other (an object literal could not say this).
    const proto = await pushRaw(await bearer('ann'), '{"protocolVersion":1,"clientId":"dev-ann","schemaVersion":1,"mutations":[{"id":"protoColumn","name":"n","ops":[{"op":"insert","table":"projects","row":{"id":"x","owner_id":"ann","title":"t","__proto__":{"owner_id":"bob"}}}]}]}');
    results.push(...(parsePushResponse(proto.body).results as MutationResult[]));
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual([...attempts.map(() => 'invalid'), 'invalid']);
    await expectOnlyRefusals(before, Object.fromEntries([...attempts.map((m): [string, string] => [m.id, 'invalid']), ['protoColumn', 'invalid']]));
    await stillServes();
  });

  it('stores SQL in ids and values as plain text (values travel as parameters)', async () => {
    const id = "p'); DROP TABLE users; --";
    const title = "x'; DELETE FROM projects; --";
    const results = await pushAs('ann', [
      mutation('sqlValues', [{ op: 'insert', table: 'projects', row: { id, owner_id: 'ann', title } }]),
      mutation('sqlDelete', [{ op: 'delete', table: 'projects', id: "' OR '1'='1" }]),
      mutation('sqlUpdate', [{ op: 'update', table: 'projects', id: "pb' OR owner_id = 'bob", set: { title: 'x' } }]),
    ]);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual(['applied', 'applied', 'row_not_found']);
    expect(await db.sql.query('SELECT id, owner_id, title FROM projects ORDER BY id')).toEqual([
      { id, owner_id: 'ann', title },
      { id: 'pa', owner_id: 'ann', title: 'pa' },
      { id: 'pb', owner_id: 'bob', title: 'pb' },
    ]);
    expect((await db.sql.query('SELECT id FROM users ORDER BY id')).map((r) => r['id'])).toEqual(['ann', 'bob']);
    await stillServes();
  });
});

describe('bodies', () => {
  it('refuses deeply nested JSON without falling over', async () => {
    const before = await snapshot();
    const ann = await bearer('ann');
    const depth = 100_000;
    const deepArray = '['.repeat(depth) + ']'.repeat(depth);
    const deepObject = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    expectError(await pushRaw(ann, deepArray), 'invalid_request', /the message must be an object/);
    expectError(await pushRaw(ann, deepObject), 'invalid_request', /protocolVersion is required/);
    expectError(await pushRaw(ann, `{"protocolVersion":1,"clientId":"d","schemaVersion":1,"mutations":${deepArray}}`), 'invalid_request', /mutations\[0\] must be an object/);
    const deepValue = `{"protocolVersion":1,"clientId":"d","schemaVersion":1,"mutations":[{"id":"m","name":"n","ops":[{"op":"insert","table":"projects","row":{"id":"x","owner_id":"ann","title":${deepArray}}}]}]}`;
    expectError(await pushRaw(ann, deepValue), 'invalid_request', /nests arrays and objects more than 64 levels deep/);
    await expectNothingWritten(before);
    await stillServes();
  });

  it('refuses huge strings: in ids and names at validation, in values as too_large, over the body limit as 413', async () => {
    const before = await snapshot();
    const ann = await bearer('ann');
    expectError(await push(ann, pushBody('d'.repeat(10_000), [])), 'invalid_request', /clientId/);
    expectError(await push(ann, pushBody('dev-ann', [{ id: 'm'.repeat(201), name: 'n', ops: [] }])), 'invalid_request', /mutations\[0\]\.id/);
    expectError(await push(ann, pushBody('dev-ann', [{ id: 'm', name: 'n'.repeat(100_000), ops: [] }])), 'invalid_request', /mutations\[0\]\.name/);
    expectError(await push(ann, pushBody('dev-ann', [mutation('huge', [{ op: 'insert', table: 'projects', row: { id: 'x', owner_id: 'ann', title: 'x'.repeat(2 * MAX_BODY) } }])])), 'body_too_large', /push fewer mutations/);
    await expectNothingWritten(before);
    // Under the body limit but over one mutation's: refused alone, recorded, nothing applied (D5).
    const big = mutation('huge', [{ op: 'insert', table: 'projects', row: { id: 'x', owner_id: 'ann', title: 'x'.repeat(4 * MAX_MUTATION_BYTES) } }]);
    const small = { ...mutation('small', [P('p-small', 'ann')]), prev: big.id };
    const results = await pushAs('ann', [big, small]);
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual(['too_large', 'applied']);
    expect(await db.sql.query("SELECT id FROM projects WHERE id IN ('x', 'p-small')")).toEqual([{ id: 'p-small' }]);
    await stillServes();
  });

  it('refuses arrays where objects belong, and the wrong kinds of values', async () => {
    const before = await snapshot();
    const ann = await bearer('ann');
    const m = (ops: unknown): unknown => ({ id: 'm', name: 'n', ops });
    const cases: [string, RegExp][] = [
      ['[]', /the message must be an object/],
      ['null', /the message must be an object/],
      ['"push"', /the message must be an object/],
      ['1e999', /the message must be an object/],
      [JSON.stringify({ ...pushBody('d', []), mutations: {} }), /mutations must be an array/],
      [JSON.stringify(pushBody('d', [[] as unknown as Mutation])), /mutations\[0\] must be an object/],
      [JSON.stringify(pushBody('d', [m({ op: 'insert', table: 'projects', row: {} }) as Mutation])), /ops must be an array/],
      [JSON.stringify(pushBody('d', [m([{ op: 'insert', table: 'projects', row: [] }]) as Mutation])), /ops\[0\]\.row must be an object/],
      [JSON.stringify(pushBody('d', [m([{ op: 'update', table: 'projects', id: 'pa', set: ['title', 'x'] }]) as Mutation])), /ops\[0\]\.set must be an object/],
      [JSON.stringify(pushBody('d', [m([{ op: 'update', table: 'projects', id: ['pa'], set: {} }]) as Mutation])), /ops\[0\]\.id/],
      [JSON.stringify(pushBody('d', [m([{ op: 'drop', table: 'projects' }]) as Mutation])), /ops\[0\]\.op must be one of/],
      [JSON.stringify({ ...pushBody('d', []), protocolVersion: '1' }), /protocolVersion must be an integer/],
      [JSON.stringify({ ...pushBody('d', []), schemaVersion: 1.5 }), /schemaVersion/],
      ['{"protocolVersion":1,"clientId":"d","schemaVersion":1,"mutations":[{"id":"m","name":"n","ops":[{"op":"insert","table":"projects","row":{"id":"x","owner_id":"ann","title":1e999}}]}]}', /title must be a JSON value/],
      [JSON.stringify(pushBody('d', [m([{ op: 'insert', table: 'projects', row: { id: 'x', owner_id: 'ann', title: 'nul\u0000' } }]) as Mutation])), /title/],
      ['{"protocolVersion":1,"clientId":"\\ud800","schemaVersion":1,"mutations":[]}', /clientId/],
    ];
    for (const [raw, hint] of cases) expectError(await pushRaw(ann, raw), 'invalid_request', hint);
    await expectNothingWritten(before);
    await stillServes();
  });

  it('refuses unknown fields anywhere: a body cannot name the user', async () => {
    const before = await snapshot();
    const ann = await bearer('ann');
    const op = P('p-x', 'bob');
    const cases: [unknown, RegExp][] = [
      [{ ...pushBody('dev-bob', [mutation('p', [op])]), userId: 'bob' }, /unknown field "userId" at the top level/],
      [pushBody('dev-ann', [{ ...mutation('p', [op]), user: 'bob' } as Mutation]), /unknown field "user" at mutations\[0\]/],
      [pushBody('dev-ann', [mutation('p', [{ ...op, owner: 'bob' } as unknown as Op])]), /unknown field "owner" at mutations\[0\]\.ops\[0\]/],
      [pushBody('dev-ann', [mutation('p', [{ op: 'delete', table: 'projects', id: 'pb', set: {} } as unknown as Op])]), /unknown field "set"/],
    ];
    for (const [body, hint] of cases) expectError(await push(ann, body), 'invalid_request', hint);
    expectError(await pushRaw(ann, '{"protocolVersion":1,"clientId":"dev-ann","schemaVersion":1,"mutations":[],"__proto__":{"userId":"bob"}}'), 'invalid_request', /unknown field "__proto__" at the top level/);
    expectError(await call(http.url, '/v1/pull', { authorization: ann, json: { ...pullBody('dev-ann'), sub: 'bob' } }), 'invalid_request', /unknown field "sub"/);
    await expectNothingWritten(before);
    await stillServes();
  });
});

describe('replays (G4)', () => {
  it('answers a replayed mutation id with different content as conflict; the first one stands', async () => {
    const first = mutation('createProject', [P('p1', 'ann')]);
    expect(await pushAs('ann', [first])).toEqual([{ id: first.id, status: 'applied' }]);
    const before = await snapshot();
    const variants: Mutation[] = [
      { ...first, ops: [P('p2', 'ann')] },
      { ...first, name: 'somethingElse' },
      { ...first, ops: [...first.ops, { op: 'delete', table: 'projects', id: 'pa' }] },
      { ...first, ops: [] },
    ];
    for (const v of variants) {
      expect(await pushAs('ann', [v])).toEqual([expect.objectContaining({ id: first.id, status: 'rejected', reason: 'conflict', message: expect.stringMatching(/already received with different content/) as unknown })]);
    }
    // Not recorded: the ledger still answers the original result.
    await expectNothingWritten(before);
    // The same content with its keys in another order is a replay, not a conflict.
    const reordered = JSON.parse(JSON.stringify({ ops: [{ row: { title: 'p1', owner_id: 'ann', id: 'p1' }, table: 'projects', op: 'insert' }], name: first.name, id: first.id })) as Mutation;
    expect(await pushAs('ann', [reordered])).toEqual([{ id: first.id, status: 'applied' }]);
    await expectNothingWritten(before);
    await stillServes();
  });
});
