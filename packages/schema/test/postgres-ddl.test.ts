import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineSchema, table, text } from '@dovetail/schema';
import { openTestPostgres } from './postgres.js';
import type { TestPostgres } from './postgres.js';

const schema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({ columns: { id: text().primaryKey() }, owner: 'id', visibility: 'public' }),
    conversations: table({ columns: { id: text().primaryKey(), created_by: text().references('users') }, owner: 'created_by', visibility: 'public' }),
    messages: table({
      columns: {
        id: text().primaryKey(),
        conversation_id: text().references('conversations', { onDelete: 'cascade' }),
        sender_id: text().references('users', { onDelete: 'restrict' }),
        reply_to: text().nullable().references('messages', { onDelete: 'set null' }),
      },
      owner: 'sender_id',
      visibility: { through: 'conversation_id' },
    }),
  },
});

let pg: TestPostgres;
beforeAll(async () => {
  pg = await openTestPostgres();
  console.log(`postgres DDL tests run on ${pg.kind}`);
  for (const sql of schema.postgresDdl()) await pg.exec(sql);
});
afterAll(() => pg.close());

describe('Postgres DDL (Q3)', () => {
  it('declares every key DEFERRABLE INITIALLY DEFERRED with its action', async () => {
    const rows = await pg.query<{ name: string; deferrable: boolean; deferred: boolean; action: string }>(
      `SELECT conname AS name, condeferrable AS deferrable, condeferred AS deferred, confdeltype AS action
         FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace ORDER BY conname`,
    );
    expect(rows).toEqual([
      { name: 'conversations_created_by_fkey', deferrable: true, deferred: true, action: 'a' },
      { name: 'messages_conversation_id_fkey', deferrable: true, deferred: true, action: 'c' },
      { name: 'messages_reply_to_fkey', deferrable: true, deferred: true, action: 'n' },
      { name: 'messages_sender_id_fkey', deferrable: true, deferred: true, action: 'a' },
    ]);
  });

  it('lets a sync transaction write messages before their conversation', async () => {
    await pg.exec(`BEGIN;
      INSERT INTO messages (id, conversation_id, sender_id) VALUES ('m1', 'c1', 'u1');
      INSERT INTO conversations (id, created_by) VALUES ('c1', 'u1');
      INSERT INTO users (id) VALUES ('u1');
      COMMIT;`);
    expect(await pg.query('SELECT id FROM messages')).toEqual([{ id: 'm1' }]);
  });

  it('still refuses a dangling key at COMMIT, with 23503', async () => {
    await pg.exec('BEGIN');
    await pg.exec("INSERT INTO messages (id, conversation_id, sender_id) VALUES ('m2', 'nope', 'u1')");
    const error = await pg.exec('COMMIT').then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(error?.code).toBe('23503');
    await pg.exec('ROLLBACK').catch(() => undefined);
  });

  it('shows why it matters: SET CONSTRAINTS ALL DEFERRED does nothing for a key not declared deferrable', async () => {
    await pg.exec('CREATE TABLE plain_parent (id text PRIMARY KEY); CREATE TABLE plain_child (id text PRIMARY KEY, parent_id text REFERENCES plain_parent (id))');
    await pg.exec('BEGIN; SET CONSTRAINTS ALL DEFERRED');
    const error = await pg.exec("INSERT INTO plain_child VALUES ('c', 'p')").then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    await pg.exec('ROLLBACK');
    expect(error?.code).toBe('23503');
  });

  it('cascades and sets null as declared', async () => {
    await pg.exec(`INSERT INTO conversations (id, created_by) VALUES ('c2', 'u1');
      INSERT INTO messages (id, conversation_id, sender_id) VALUES ('a', 'c2', 'u1'), ('b', 'c1', 'u1');
      UPDATE messages SET reply_to = 'a' WHERE id = 'b';
      DELETE FROM conversations WHERE id = 'c2';`);
    expect(await pg.query('SELECT id, reply_to FROM messages ORDER BY id')).toEqual([
      { id: 'b', reply_to: null },
      { id: 'm1', reply_to: null },
    ]);
  });
});
