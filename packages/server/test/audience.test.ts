import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { changesChannel, currentSchema } from '@dovetail/server';
import { ANNOUNCE_ROWS } from '../src/setup.js';
import { audienceOf, emptyAnnounced, recordAnnouncement } from '../src/audience.js';
import { openTestDatabase, syncServer, truncateAll } from './support/harness.js';
import type { TestDatabase } from './support/harness.js';
import { within } from './support/http-client.js';
import { serverSchema } from './support/schema.js';

/**
 * Who gets poked: the capture trigger announces each changed row, and the
 * poke service asks the database which connected users may see it, with
 * the rules pulls use. Each case writes with plain SQL (as any code path
 * may), hears what the trigger announced, and checks the audience.
 */

let db: TestDatabase;
let channel: string;
beforeAll(async () => {
  db = await openTestDatabase();
  await syncServer(serverSchema, db.sql);
  channel = changesChannel(await currentSchema(db.sql));
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

/** Runs `statements` in one transaction and returns the payloads it announced. */
async function announcedBy(...statements: string[]): Promise<string[]> {
  const heard: string[] = [];
  const unlisten = await db.sql.listen(channel, (payload) => heard.push(payload));
  try {
    await db.sql.transaction(async (tx) => {
      for (const s of statements) await tx.query(s);
    });
    await db.sql.query(`SELECT pg_notify($1, 'barrier')`, [channel]);
    await within(10_000, 'the barrier notification', (async () => {
      while (!heard.includes('barrier')) await new Promise((r) => setTimeout(r, 5));
    })());
    return heard.filter((p) => p !== 'barrier');
  } finally {
    await unlisten();
  }
}

async function audience(...statements: string[]): Promise<string[]> {
  const announced = emptyAnnounced();
  for (const payload of await announcedBy(...statements)) recordAnnouncement(announced, payload);
  return [...(await audienceOf(db.sql, serverSchema, announced, USERS))].sort();
}

describe('what the trigger announces', () => {
  it('each row as op:table:id, an update that changes the key as a delete and an insert', async () => {
    const heard = await announcedBy(
      `INSERT INTO tasks (id, project_id, title) VALUES ('t1', 'p-ann', 'Dig')`,
      `UPDATE tasks SET title = 'Dig deeper' WHERE id = 't1'`,
      `UPDATE tasks SET id = 't2' WHERE id = 't1'`,
      `DELETE FROM tasks WHERE id = 't2'`,
    );
    expect(heard).toEqual(['I:tasks:t1', 'U:tasks:t1', 'D:tasks:t1', 'U:tasks:t2', 'D:tasks:t2']);
  });

  it('a row whose id is too long for a notification announces its table, and the write goes through', async () => {
    const long = 'x'.repeat(9000);
    expect(await announcedBy(`INSERT INTO users (id, name) VALUES ('${long}', 'written by another service')`)).toEqual(['*:users']);
  });

  it(`a transaction announces ${ANNOUNCE_ROWS} rows one by one, then only the table`, async () => {
    const heard = await announcedBy(`INSERT INTO tasks (id, project_id, title) SELECT 'bulk-' || i, 'p-ann', 'x' FROM generate_series(1, ${ANNOUNCE_ROWS + 500}) AS i`);
    expect(heard).toHaveLength(ANNOUNCE_ROWS + 1);
    expect(heard.at(-1)).toBe('*:tasks');
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

  it('a bulk write announced as a whole table: everyone', async () => {
    expect(await audience(`INSERT INTO tasks (id, project_id, title) SELECT 'bulk-' || i, 'p-ann', 'x' FROM generate_series(1, ${ANNOUNCE_ROWS + 1}) AS i`)).toEqual(USERS);
  });

  it('only connected users are candidates', async () => {
    const announced = emptyAnnounced();
    recordAnnouncement(announced, 'U:users:ann');
    expect([...(await audienceOf(db.sql, serverSchema, announced, ['cy']))]).toEqual(['cy']);
    expect([...(await audienceOf(db.sql, serverSchema, announced, []))]).toEqual([]);
  });
});
