import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePullResponse, parsePushResponse } from '@dovetail/protocol';
import { createAuthenticator, startHttpServer, SyncServer } from '@dovetail/server';
import type { Authenticator, Identity, RunningServer, Sql } from '@dovetail/server';
import { bearer, memoryLogger, openTestDatabase, SECRET, signalsDuring, syncServer, tokenFor, truncateAll, wrapSessions } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { call, mutation, PokeClient, pullBody, pushBody, within } from './support/http-client.js';
import { serverSchema } from './support/schema.js';

/**
 * Pokes over the WebSocket at /v1/poke. Each test starts its own server
 * instances, so a notification of an earlier test's write (delivered
 * asynchronously by Postgres) cannot stand in for the one under test: an
 * instance hears only what commits after it started listening.
 */

let db: TestDatabase;
let sync: Awaited<ReturnType<typeof syncServer>>;
beforeAll(async () => {
  db = await openTestDatabase();
  console.log(`poke tests run on ${db.kind}`);
  sync = await syncServer(serverSchema, db.sql);
}, 60_000);
afterAll(() => db.close());

const running: RunningServer[] = [];
const devices: PokeClient[] = [];
beforeEach(() => truncateAll(db.sql, serverSchema));
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  for (const s of running.splice(0)) await s.close();
});

/** An HTTP server for `server` (the shared one by default), closed after the test. */
async function serve(server: SyncServer = sync): Promise<RunningServer> {
  const http = await startHttpServer(server, { port: 0 });
  running.push(http);
  return http;
}

async function device(url: string, user: string, clientId = `dev-${user}`): Promise<PokeClient> {
  const d = await PokeClient.welcomed(url, await tokenFor(user), clientId);
  devices.push(d);
  return d;
}

const poke = { type: 'poke', protocolVersion: 1 };

describe('hello', () => {
  it('welcomes a device with a valid token and counts it', async () => {
    const http = await serve();
    await device(http.url, 'ann');
    expect(http.pokes.size).toBe(1);
    expect((await call(http.url, '/health')).body).toMatchObject({ connectedDevices: 1 });
  });

  it('answers a bad hello with an error body, then closes with 4003', async () => {
    const http = await serve();
    const expired = await tokenFor('ann', { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const forged = await tokenFor('ann', { secret: 'another-secret-that-is-also-long-enough-for-hs256' });
    const hellos: [string, string, RegExp][] = [
      [JSON.stringify({ type: 'hello', protocolVersion: 1, clientId: 'd', token: forged }), 'token_invalid', /get a new token/],
      [JSON.stringify({ type: 'hello', protocolVersion: 1, clientId: 'd', token: expired }), 'token_expired', /refresh/],
      [JSON.stringify({ type: 'hello', protocolVersion: 1, clientId: 'd', token: 'not a token' }), 'unauthorized', /Bearer/],
      [JSON.stringify({ type: 'hello', protocolVersion: 2, clientId: 'd', token: forged }), 'unsupported_protocol', /speaks protocol version 1/],
      [JSON.stringify({ type: 'hello', protocolVersion: 1, clientId: 'd', token: forged, userId: 'ann' }), 'invalid_request', /unknown field "userId"/],
      ['{"type": "hello",', 'invalid_request', /not valid JSON; send one JSON object/],
    ];
    for (const [frame, code, hint] of hellos) {
      const d = await PokeClient.open(http.url);
      d.ws.send(frame);
      expect(await d.next(`the answer to a hello refused with ${code}`)).toEqual({ error: { code, message: expect.stringMatching(hint) as unknown } });
      expect(await within(10_000, 'the close', d.closed)).toMatchObject({ code: 4003 });
    }
    expect(http.pokes.size).toBe(0);
  });

  it('does not keep a device that leaves while its token is being checked', async () => {
    const real = createAuthenticator({ secret: SECRET });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let checked: Promise<Identity> | undefined;
    const slow: Authenticator = (authorization) => (checked = released.then(() => real(authorization)));
    const http = await serve(new SyncServer({ schema: serverSchema, sql: db.sql, authenticate: slow }));
    const d = await PokeClient.open(http.url);
    d.hello(await tokenFor('ann'));
    await within(10_000, 'the hello to arrive', (async () => {
      while (!checked) await new Promise((r) => setImmediate(r));
    })());
    await d.close(); // gone before the token is checked
    release();
    await checked;
    await new Promise((r) => setImmediate(r));
    expect(http.pokes.size).toBe(0);
  });

  it('survives an oversized frame and a broken one from a device that has not said hello', async () => {
    const http = await serve();
    const big = await PokeClient.open(http.url);
    big.ws.send('x'.repeat(128 * 1024));
    expect(await within(10_000, 'the close of an oversized frame', big.closed)).toMatchObject({ code: 1009 });
    const broken = await PokeClient.open(http.url);
    // A text frame that is not UTF-8.
    broken.ws.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: false });
    expect(await within(10_000, 'the close of a broken frame', broken.closed)).toMatchObject({ code: 1007 });
    // Still serving.
    expect((await call(http.url, '/health')).status).toBe(200);
    await device(http.url, 'ann');
  });

  it('refuses an upgrade on any other path', async () => {
    const http = await serve();
    await expect(PokeClient.open(http.url, '/v1/other')).rejects.toThrow();
  });
});

describe('pokes', () => {
  it("pokes a user's other devices when one of them pushes, but not the one that pushed (it pulls after its push)", async () => {
    // Ann's row exists, so the push writes only what it pushes.
    await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', 'Ann')`);
    const http = await serve();
    const annPhone = await device(http.url, 'ann', 'ann-phone');
    const annLaptop = await device(http.url, 'ann', 'ann-laptop');
    const reply = await call(http.url, '/v1/push', { authorization: await bearer('ann'), json: pushBody('ann-laptop', [mutation('p', [{ op: 'insert', table: 'projects', row: { id: 'p1', owner_id: 'ann', title: 'Garden' } }])]) });
    expect(parsePushResponse(reply.body).results).toEqual([expect.objectContaining({ status: 'applied' })]);
    expect(await annPhone.next('a poke on the phone')).toEqual(poke);
    // One flush sends all its pokes at once: by the time the phone has its
    // poke, one for the laptop would have been sent too.
    expect(http.pokes.sent).toBe(1);
    expect(annLaptop.queued).toEqual([]);
    // A change written by other code pokes every device of hers, the laptop too.
    await db.sql.query(`UPDATE projects SET title = 'Orchard' WHERE id = 'p1'`);
    expect(await annPhone.next('a poke on the phone for a write of other code')).toEqual(poke);
    expect(await annLaptop.next('a poke on the laptop for a write of other code')).toEqual(poke);
  });

  it('pokes only the devices whose users may see the change', async () => {
    // Their identity rows exist, so pushing writes only what is pushed.
    await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', ''), ('bob', '')`);
    const http = await serve();
    const annPhone = await device(http.url, 'ann', 'ann-phone');
    const bobPhone = await device(http.url, 'bob', 'bob-phone');
    const push = async (user: string, ops: Parameters<typeof mutation>[1]): Promise<void> => {
      // From another device of the user: the one that pushes is not poked.
      const reply = await call(http.url, '/v1/push', { authorization: await bearer(user), json: pushBody(`${user}-laptop`, [mutation('m', ops)]) });
      expect(parsePushResponse(reply.body).results).toEqual([expect.objectContaining({ status: 'applied' })]);
    };
    // Ann's project is hers alone (visibility 'owner').
    await push('ann', [{ op: 'insert', table: 'projects', row: { id: 'p1', owner_id: 'ann', title: 'Garden' } }]);
    expect(await annPhone.next('a poke for her own project')).toEqual(poke);
    // One flush sends all its pokes at once: by the time Ann has hers, any
    // poke for Bob has been sent too.
    expect(http.pokes.sent).toBe(1);
    // Then a public row: both are poked.
    await push('ann', [{ op: 'update', table: 'users', id: 'ann', set: { name: 'Ann' } }]);
    expect(await annPhone.next('a poke for a public row')).toEqual(poke);
    expect(await bobPhone.next('a poke for a public row')).toEqual(poke);
    expect(http.pokes.sent).toBe(3);
  });

  it('pokes every device when who may see a change cannot be worked out, and logs why', async () => {
    await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', ''), ('bob', '')`);
    const http = await serve();
    const annPhone = await device(http.url, 'ann', 'ann-phone');
    const bobPhone = await device(http.url, 'bob', 'bob-phone');
    sync.logs.length = 0;
    // Ann's new project, committed with a change that breaks the visibility
    // rule's SQL (the owner column renamed): the audience query fails.
    try {
      await db.sql.transaction(async (tx) => {
        await tx.query(`INSERT INTO projects (id, owner_id, title) VALUES ('p1', 'ann', 'Garden')`);
        await tx.query('ALTER TABLE projects RENAME COLUMN owner_id TO owner_gone');
      });
      expect(await annPhone.next('a poke for her project')).toEqual(poke);
      expect(await bobPhone.next('a poke, since no one could tell he may not see it')).toEqual(poke);
      expect(sync.logs).toContainEqual(expect.objectContaining({ message: 'could not work out who to poke; poking every device' }));
    } finally {
      await db.sql.query('ALTER TABLE projects RENAME COLUMN owner_gone TO owner_id');
    }
  });

  it('closes every socket with 1001 on shutdown, also one that has not said hello yet', async () => {
    const http = await serve();
    const welcomed = await device(http.url, 'ann');
    const silent = await PokeClient.open(http.url);
    running.splice(running.indexOf(http), 1);
    // Without closing the silent one, close() would wait for its hello timeout.
    await within(5_000, 'close() with a device that never said hello', http.close());
    expect(await within(5_000, 'the welcomed device to be closed', welcomed.closed)).toMatchObject({ code: 1001 });
    expect(await within(5_000, 'the silent device to be closed', silent.closed)).toMatchObject({ code: 1001 });
  });
});

describe('two server instances on one database', () => {
  it('pokes a device on instance B for a row written straight into Postgres (G13), and for a write through instance A', async () => {
    // Real Postgres: each instance with its own connections. PGlite: one
    // embedded database, whose LISTEN/NOTIFY works within the process.
    const sqlB: Sql = db.kind === 'postgres' ? await db.another() : db.sql;
    const a = await serve();
    const b = await serve(new SyncServer({ schema: serverSchema, sql: sqlB, authenticate: createAuthenticator({ secret: SECRET }), log: memoryLogger() }));
    const bobOnB = await device(b.url, 'bob'); // saying hello writes nothing

    // First a row written by other code, straight into Postgres: the only write since B started listening.
    const raw = await db.raw();
    if (raw) await raw.query(`INSERT INTO users (id, name) VALUES ('cron', 'written by SQL')`);
    else await db.sql.query(`INSERT INTO users (id, name) VALUES ('cron', 'written by SQL')`);
    expect(await bobOnB.next('a poke on B for a row written with SQL')).toEqual(poke);
    // One statement, one notification, one poke. (On a shared Postgres database, other
    // schemas' writes use the same channel and may poke too.)
    if (db.kind === 'embedded') expect(bobOnB.queued).toEqual([]);

    // Then a write pushed through A.
    const pushed = await call(a.url, '/v1/push', { authorization: await bearer('ann'), json: pushBody('dev-ann', [mutation('hello', [{ op: 'update', table: 'users', id: 'ann', set: { name: 'Ann' } }])]) });
    expect(parsePushResponse(pushed.body).results).toEqual([expect.objectContaining({ status: 'applied' })]);
    expect(await bobOnB.next('a poke on B for a write through A')).toEqual(poke);

    // What the pokes announced is there to pull through B.
    const pulled = parsePullResponse((await call(b.url, '/v1/pull', { authorization: await bearer('bob'), json: pullBody('dev-bob') })).body);
    expect(pulled.changes).toEqual(expect.arrayContaining([
      { op: 'upsert', table: 'users', row: { id: 'cron', name: 'written by SQL' } },
      { op: 'upsert', table: 'users', row: { id: 'ann', name: 'Ann' } },
    ]));
  });
});

type Rows = Record<string, unknown>[][];

/** The test database, with every script of a session passed through `rewrite`, which runs it (changed or not) with `run`. */
function rewritingScripts(rewrite: (text: string, run: (text: string) => Promise<Rows>) => Promise<Rows>): Sql {
  return wrapSessions(db.sql, (s) => ({ script: (text) => rewrite(text, (t) => s.script(t)) }));
}

describe('what is announced', () => {
  // A pull (or a push of nothing) must not announce anything: otherwise every
  // poked device's pull would poke every device again, for ever.
  it('a push of many mutations signals once, after its commits, not once per mutation', async () => {
    await sync.pull(await bearer('ann'), pullBody('dev-ann')); // creates Ann's row
    const heard = await signalsDuring(db.sql, async () => {
      const mutations = Array.from({ length: 5 }, (_, i) => mutation(`p${i}`, [{ op: 'insert', table: 'projects', row: { id: `p${i}`, owner_id: 'ann', title: 'Garden' } }]));
      const { results } = await sync.push(await bearer('ann'), pushBody('dev-ann', mutations));
      expect(results.map((r) => r.status)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
      await sync.settled();
    });
    expect(heard).toEqual(['']);
  });

  /** A server whose first script with a COMMIT before its end gets `injected` (statements) right after that COMMIT. */
  async function injectingAfterFirstCommit(injected: string[]): Promise<{ server: Awaited<ReturnType<typeof syncServer>>; fired: () => boolean }> {
    let armed = true;
    const server = await syncServer(
      serverSchema,
      rewritingScripts(async (text, run) => {
        const parts = text.split(';\n');
        const at = parts.indexOf('COMMIT');
        if (!armed || at < 0 || at === parts.length - 1) return run(text);
        armed = false;
        parts.splice(at + 1, 0, ...injected);
        const results = await run(parts.join(';\n'));
        results.splice(at + 1, injected.length);
        return results;
      }),
    );
    return { server, fired: () => !armed };
  }

  const twoProjects = () => [0, 1].map((i) => mutation(`p${i}`, [{ op: 'insert', table: 'projects', row: { id: `p${i}`, owner_id: 'ann', title: 'Garden' } }]));

  it('a push that fails after a mutation committed signals it all the same (other code deleted the device record between two mutations)', async () => {
    await sync.pull(await bearer('ann'), pullBody('dev-ann')); // creates Ann's row
    // A transaction of its own, right after the first mutation's COMMIT.
    const failing = await injectingAfterFirstCommit(['BEGIN', "DELETE FROM _dovetail_clients WHERE client_id = 'dev-ann'", 'COMMIT']);
    const heard = await signalsDuring(db.sql, async () => {
      await expect(failing.server.push(await bearer('ann'), pushBody('dev-ann', twoProjects()))).rejects.toMatchObject({ code: 'internal' });
      await failing.server.settled();
    });
    expect(failing.fired()).toBe(true);
    expect(await db.sql.query('SELECT id FROM projects ORDER BY id')).toEqual([{ id: 'p0' }]);
    expect(heard).toEqual(['']);
  });

  it('a script that fails right after a COMMIT keeps what committed; the careful path takes the next mutation, and everything is signalled once', async () => {
    await sync.pull(await bearer('ann'), pullBody('dev-ann')); // creates Ann's row
    const failing = await injectingAfterFirstCommit(['SELECT 1 / 0']);
    const heard = await signalsDuring(db.sql, async () => {
      const { results } = await failing.server.push(await bearer('ann'), pushBody('dev-ann', twoProjects()));
      expect(results.map((r) => r.status)).toEqual(['applied', 'applied']);
      await failing.server.settled();
    });
    expect(failing.fired()).toBe(true);
    expect(await db.sql.query('SELECT id FROM projects ORDER BY id')).toEqual([{ id: 'p0' }, { id: 'p1' }]);
    expect(heard).toEqual(['']);
  });

  it('a push whose signal fails still succeeds, and its commits are signalled after it', async () => {
    await sync.pull(await bearer('ann'), pullBody('dev-ann')); // creates Ann's row
    let broken = 0;
    const failing = await syncServer(
      serverSchema,
      rewritingScripts((text, run) => {
        if (!text.includes('pg_notify')) return run(text);
        broken++;
        return run(text.replace(/SELECT pg_notify\([^;]*$/, 'SELECT 1 / 0'));
      }),
    );
    const heard = await signalsDuring(db.sql, async () => {
      const { results } = await failing.push(await bearer('ann'), pushBody('dev-ann', [mutation('p0', [{ op: 'insert', table: 'projects', row: { id: 'p0', owner_id: 'ann', title: 'Garden' } }])]));
      expect(results.map((r) => r.status)).toEqual(['applied']);
      await failing.settled();
    });
    expect(broken).toBe(1);
    expect(heard).toEqual(['']);
  });

  it('a pull that writes nothing notifies no one', async () => {
    await sync.pull(await bearer('ann'), pullBody('dev-ann')); // creates Ann's row
    expect(await signalsDuring(db.sql, async () => void (await sync.pull(await bearer('ann'), pullBody('dev-ann'))))).toEqual([]);
  });
});
