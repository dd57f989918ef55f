import { request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePullResponse } from '@dovetail/protocol';
import { startHttpServer } from '@dovetail/server';
import type { RunningServer } from '@dovetail/server';
import { bearer, openTestDatabase, syncServer, truncateAll } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { call, pullBody, within } from './support/http-client.js';
import { serverSchema } from './support/schema.js';

/**
 * A first sync over HTTP is streamed as it is read when the server runs on
 * Postgres (chunks of `streamChunkRows`, here 3, so a few rows cross many
 * chunks). On embedded PGlite it is written in one piece, because a stream
 * would hold PGlite's only connection while the device reads. Either way
 * the device gets the same answer a pull returns.
 */

const CHUNK = 3;
let db: TestDatabase;
let sync: Awaited<ReturnType<typeof syncServer>>;
let http: RunningServer;
beforeAll(async () => {
  db = await openTestDatabase();
  console.log(`pull stream tests run on ${db.kind}${db.kind === 'embedded' ? ' (not streamed there: one piece, same answer)' : ''}`);
  sync = await syncServer(serverSchema, db.sql, { streamChunkRows: CHUNK });
  http = await startHttpServer(sync, { port: 0 });
}, 60_000);
afterAll(async () => {
  await http.close();
  await db.close();
});
beforeEach(async () => {
  await truncateAll(db.sql, serverSchema);
  sync.logs.length = 0;
  await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', 'Ann'), ('bob', 'Bob')`);
  await db.sql.query(`INSERT INTO projects (id, owner_id, title) SELECT 'p' || i, 'ann', 'project ' || i FROM generate_series(1, 7) AS i`);
  await db.sql.query(`INSERT INTO projects (id, owner_id, title) VALUES ('p-bob', 'bob', 'not for ann')`);
  // Subtasks whose ids sort before their parents': parents must still come first.
  await db.sql.query(`INSERT INTO tasks (id, project_id, title) VALUES ('t9', 'p1', 'parent')`);
  await db.sql.query(`INSERT INTO tasks (id, project_id, parent_task_id, title) VALUES ('t1', 'p1', 't9', 'child'), ('t0', 'p1', 't1', 'grandchild')`);
  await db.sql.query(`INSERT INTO tasks (id, project_id, title) SELECT 'x' || i, 'p2', 'task ' || i FROM generate_series(1, 10) AS i`);
});

const ids = (changes: readonly { table: string; op: string; row?: Record<string, unknown> }[]): string[] => changes.map((c) => `${c.table}:${String(c.row?.['id'])}`);

describe('a first sync over HTTP', () => {
  it('is the same answer a pull gives, parents first, filtered to the user', async () => {
    const ann = await bearer('ann');
    const reply = await call(http.url, '/v1/pull', { authorization: ann, json: pullBody('dev-ann') });
    expect(reply.status).toBe(200);
    const streamed = parsePullResponse(reply.body);
    const direct = await sync.pull(ann, pullBody('dev-ann'));
    expect({ ...streamed, cursor: '' }).toEqual({ ...direct, cursor: '' });
    expect(streamed.reset).toBe(true);
    const order = ids(streamed.changes);
    expect(order).toHaveLength(2 + 7 + 13); // both users (public), Ann's projects, her tasks
    expect(order).not.toContain('projects:p-bob');
    expect(order.indexOf('tasks:t9')).toBeLessThan(order.indexOf('tasks:t1'));
    expect(order.indexOf('tasks:t1')).toBeLessThan(order.indexOf('tasks:t0'));
    expect(Math.max(...order.filter((o) => o.startsWith('projects:')).map((o) => order.indexOf(o)))).toBeLessThan(Math.min(...order.filter((o) => o.startsWith('tasks:')).map((o) => order.indexOf(o))));
    // The cursor it gives works for the next pull.
    const next = parsePullResponse((await call(http.url, '/v1/pull', { authorization: ann, json: pullBody('dev-ann', streamed.cursor) })).body);
    expect(next).toMatchObject({ reset: false, changes: [] });
  });

  it('comes in chunks on Postgres (one piece on PGlite) that join into one JSON answer', async () => {
    const pieces: string[] = [];
    await sync.pullTo({ userId: 'ann', claims: {} }, pullBody('dev-ann'), (text) => {
      pieces.push(text);
      return Promise.resolve();
    });
    // A head, then rows: 22 rows in chunks of 3 (a table with keys to itself comes whole), then the end.
    if (db.kind === 'postgres') expect(pieces.length).toBeGreaterThan(5);
    else expect(pieces).toHaveLength(1);
    const joined = parsePullResponse(JSON.parse(pieces.join('')));
    expect(ids(joined.changes)).toEqual(ids((await sync.pull(await bearer('ann'), pullBody('dev-ann'))).changes));
  });

  it("a new user's first sync holds their own identity row, made from the token before the snapshot", async () => {
    const reply = await call(http.url, '/v1/pull', { authorization: await bearer('zed'), json: pullBody('dev-zed') });
    expect(reply.status).toBe(200);
    expect(ids(parsePullResponse(reply.body).changes)).toContain('users:zed');
  });

  it('errors found before the answer begins are answered as usual', async () => {
    const reply = await call(http.url, '/v1/pull', { authorization: await bearer('ann'), json: { ...pullBody('dev-ann'), schemaVersion: 7 } });
    expect(reply.status).toBe(409);
    expect(reply.body).toMatchObject({ error: { code: 'schema_mismatch' } });
  });

  it('a device that leaves mid-answer costs nothing: the server keeps serving and its connections come back', async () => {
    const ann = await bearer('ann');
    // Many rows, so the answer is still being written when the device leaves.
    await db.sql.query(`INSERT INTO tasks (id, project_id, title) SELECT 'bulk' || i, 'p3', repeat('x', 200) FROM generate_series(1, 3000) AS i`);
    await within(10_000, 'a device that reads one piece and leaves', new Promise<void>((resolve, reject) => {
      const req = request(`${http.url}/v1/pull`, { method: 'POST', headers: { authorization: ann, 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
        res.once('error', () => undefined);
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end(JSON.stringify(pullBody('dev-ann')));
    }));
    // More pulls than the pool has connections: none is left held by the one that was cut.
    for (let i = 0; i < 8; i++) {
      const reply = await call(http.url, '/v1/pull', { authorization: await bearer('bob'), json: pullBody(`dev-bob-${i}`) });
      expect(reply.status).toBe(200);
    }
    expect((await call(http.url, '/health')).status).toBe(200);
  });
});
