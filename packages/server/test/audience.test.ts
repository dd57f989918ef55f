import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { audienceOf, emptyAnnounced, noteChange } from '../src/audience.js';
import type { Announced } from '../src/audience.js';
import { ChangeFeed, FEED_ROWS } from '../src/change-feed.js';
import { captureDdl } from '../src/setup.js';
import { openTestDatabase, signalsDuring, syncServer, truncateAll, twoConnections } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { serverSchema } from './support/schema.js';

/**
 * Who gets poked: the capture trigger signals each commit, the poke service
 * reads what changed from the change log (the feed), and asks the database
 * which connected users may see it, with the rules pulls use. Each case
 * writes with plain SQL (as any code path may), reads the feed, and checks
 * the audience.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await openTestDatabase();
  await syncServer(serverSchema, db.sql);
}, 60_000);
afterAll(() => db.close());

const USERS = ['ann', 'bob', 'cy'];
beforeEach(async () => {
  await truncateAll(db.sql, serverSchema);
  await db.sql.query(`INSERT INTO users (id, name) VALUES ('ann', 'Ann'), ('bob', 'Bob'), ('cy', 'Cy')`);
  await db.sql.query(`INSERT INTO projects (id, owner_id, title) VALUES ('p-ann', 'ann', 'Garden'), ('p-bob', 'bob', 'Garage')`);
  await db.sql.query(`INSERT INTO conversations (id, created_by) VALUES ('c1', 'ann')`);
  await db.sql.query(`INSERT INTO members (id, conversation_id, user_id) VALUES ('m-ann', 'c1', 'ann'), ('m-bob', 'c1', 'bob')`);
});

/** Runs `statements` in one transaction; resolves to the signals it sent, once they have all arrived. */
async function signalledBy(...statements: string[]): Promise<string[]> {
  return signalsDuring(db.sql, () =>
    db.sql.transaction(async (tx) => {
      for (const s of statements) await tx.query(s);
    }),
  );
}

/** What a feed opened before `statements` (one transaction) reads after them. */
async function fedBy(...statements: string[]): Promise<Announced> {
  const feed = await ChangeFeed.open(db.sql);
  await db.sql.transaction(async (tx) => {
    for (const s of statements) await tx.query(s);
  });
  return feed.read();
}

const plain = (a: Announced): Record<string, unknown> => ({
  current: Object.fromEntries([...a.current].map(([t, ids]) => [t, [...ids].sort()])),
  previous: Object.fromEntries([...a.previous].map(([t, ids]) => [t, [...ids].sort()])),
  whole: [...a.whole].sort(),
});

async function audience(...statements: string[]): Promise<string[]> {
  return [...(await audienceOf(db.sql, serverSchema, await fedBy(...statements), USERS))].sort();
}

describe('what a commit signals', () => {
  it('a transaction of any code signals once, with an empty payload, however many rows it wrote', async () => {
    expect(await signalledBy(`INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-ann', 'Dig')`, `UPDATE tasks SET title = 'Dig deeper' WHERE id = 't1'`, `DELETE FROM tasks WHERE id = 't1'`)).toEqual(['']);
  });

  it("a quiet transaction (the engine's push, which signals after it commits) signals nothing", async () => {
    expect(await signalledBy(`SET LOCAL dovetail.quiet = 'on'`, `INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-ann', 'Dig')`)).toEqual([]);
  });

  it('a row whose id is longer than a notification may carry is written and signalled', async () => {
    const long = 'x'.repeat(9000);
    expect(await signalledBy(`INSERT INTO users (id, name) VALUES ('${long}', 'written by another service')`)).toEqual(['']);
    expect(plain(await fedBy(`UPDATE users SET name = 'again' WHERE id = '${long}'`))).toEqual({ current: { users: [long] }, previous: { users: [long] }, whole: [] });
  });
});

describe('what the feed reads', () => {
  it('each row: an insert as it is now, an update or delete by its previous image too; a key change as both ids', async () => {
    const read = await fedBy(
      `INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-ann', 'Dig')`,
      `UPDATE tasks SET title = 'Dig deeper' WHERE id = 't1'`,
      `UPDATE tasks SET id = 't2' WHERE id = 't1'`,
      `DELETE FROM tasks WHERE id = 't2'`,
    );
    expect(plain(read)).toEqual({ current: { tasks: ['t1', 't2'] }, previous: { tasks: ['t1', 't2'] }, whole: [] });
  });

  it('the same for a table keyed by another column than id: a key change as both ids', async () => {
    await db.sql.query('CREATE TABLE IF NOT EXISTS tags (code text PRIMARY KEY, label text)');
    for (const statement of captureDdl('tags', 'code')) await db.sql.query(statement);
    const read = await fedBy(`INSERT INTO tags (code, label) VALUES ('a', 'A')`, `UPDATE tags SET code = 'b' WHERE code = 'a'`, `DELETE FROM tags WHERE code = 'b'`);
    expect(plain(read)).toEqual({ current: { tags: ['a', 'b'] }, previous: { tags: ['a', 'b'] }, whole: [] });
  });

  it('reads each commit once: a second read finds nothing new', async () => {
    const feed = await ChangeFeed.open(db.sql);
    await db.sql.query(`INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-ann', 'Dig')`);
    expect(plain(await feed.read()).current).toEqual({ tasks: ['t1'] });
    expect(plain(await feed.read())).toEqual({ current: {}, previous: {}, whole: [] });
  });

  it(`past ${FEED_ROWS} rows, names the tables only`, async () => {
    expect(plain(await fedBy(`INSERT INTO tasks (id, project_id, title) SELECT 'bulk-' || i, 'p-ann', 'x' FROM generate_series(1, ${FEED_ROWS + 1}) AS i`))).toEqual({ current: {}, previous: {}, whole: ['tasks'] });
  });

  it('never skips a transaction that commits after a later one started (two connections)', async (ctx) => {
    const [a, b] = await twoConnections(db, ctx);
    const feed = await ChangeFeed.open(db.sql);
    await a.query('BEGIN');
    await a.query(`INSERT INTO tasks (id, project_id, title) VALUES ('slow', 'p-ann', 'committed late')`); // xid assigned first
    await b.query(`INSERT INTO tasks (id, project_id, title) VALUES ('fast', 'p-ann', 'committed early')`);
    expect(plain(await feed.read()).current).toEqual({ tasks: ['fast'] });
    await a.query('COMMIT');
    expect(plain(await feed.read()).current).toEqual({ tasks: ['slow'] });
  });
});

describe('the audience', () => {
  it('a public row: every connected user', async () => {
    expect(await audience(`UPDATE users SET name = 'Ann B' WHERE id = 'ann'`)).toEqual(USERS);
  });

  it("an owner's row, and rows visible through it: the owner only", async () => {
    expect(await audience(`UPDATE projects SET title = 'Roses' WHERE id = 'p-ann'`)).toEqual(['ann']);
    expect(await audience(`INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-bob', 'Oil')`)).toEqual(['bob']);
    expect(await audience(`DELETE FROM tasks WHERE id = 't1'`)).toEqual(['bob']);
  });

  it('a row visible to members: its members; joining and leaving tell the member who joined or left', async () => {
    expect(await audience(`INSERT INTO messages (id, conversation_id, sender_id, body) VALUES ('x1', 'c1', 'bob', 'hi')`)).toEqual(['ann', 'bob']);
    expect(await audience(`INSERT INTO members (id, conversation_id, user_id) VALUES ('m-cy', 'c1', 'cy')`)).toEqual(USERS);
    expect(await audience(`DELETE FROM members WHERE id = 'm-cy'`)).toEqual(USERS);
    expect(await audience(`UPDATE messages SET body = 'hello' WHERE id = 'x1'`)).toEqual(['ann', 'bob']);
  });

  it('a row moved to another owner: the old owner and the new one', async () => {
    expect(await audience(`UPDATE projects SET owner_id = 'bob' WHERE id = 'p-ann'`)).toEqual(['ann', 'bob']);
  });

  it('a bulk write read as a whole table: everyone', async () => {
    expect(await audience(`INSERT INTO tasks (id, project_id, title) SELECT 'bulk-' || i, 'p-ann', 'x' FROM generate_series(1, ${FEED_ROWS + 1}) AS i`)).toEqual(USERS);
  });

  it('only connected users are candidates', async () => {
    const announced = emptyAnnounced();
    noteChange(announced, 'users', 'ann', 'updated');
    expect([...(await audienceOf(db.sql, serverSchema, announced, ['cy']))]).toEqual(['cy']);
    expect([...(await audienceOf(db.sql, serverSchema, announced, []))]).toEqual([]);
  });
});
