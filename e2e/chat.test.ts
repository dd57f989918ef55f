import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ForeignKeyViolation } from '@dovetail/client';
import { defineSchema, table, text } from '@dovetail/schema';
import { createWorld, foreignKeyErrors } from './support/world.js';
import type { World } from './support/world.js';

const chat = defineSchema({
  version: 1,
  identity: 'user_profiles',
  tables: {
    user_profiles: table({ columns: { id: text().primaryKey(), name: text().default('') }, owner: 'id', visibility: 'public' }),
    conversations: table({
      columns: { id: text().primaryKey(), created_by: text().references('user_profiles', { onDelete: 'cascade' }) },
      owner: 'created_by',
      visibility: { members: { table: 'members', key: 'conversation_id', user: 'user_id' } },
    }),
    members: table({
      columns: { id: text().primaryKey(), conversation_id: text().references('conversations', { onDelete: 'cascade' }), user_id: text().references('user_profiles', { onDelete: 'cascade' }) },
      owner: { through: 'conversation_id' },
      visibility: { through: 'conversation_id' },
    }),
    messages: table({
      columns: { id: text().primaryKey(), conversation_id: text().references('conversations', { onDelete: 'cascade' }), sender_id: text().references('user_profiles', { onDelete: 'cascade' }), body: text() },
      owner: 'sender_id',
      visibility: { through: 'conversation_id' },
    }),
  },
});

let world: World<typeof chat>;
beforeAll(async () => {
  world = await createWorld(chat);
});
afterAll(() => world.close());

describe('messages and their conversation (S3, S4)', () => {
  it('pushes a message after its local-only conversation, in order, even from separate code paths', async () => {
    const ann = await world.deviceFor('ann');
    const bob = await world.deviceFor('bob');
    await bob.db.sync.syncNow(); // Bob's profile exists on the server (and Ann's arrives with her first push: S4)
    await ann.db.sync.syncNow();
    // Code path 1 creates the conversation; code path 2, later, writes messages.
    await ann.db.mutate('startConversation', (m) => {
      m.insert('conversations', { id: 'c1', created_by: 'ann' });
      m.insert('members', { id: 'c1-ann', conversation_id: 'c1', user_id: 'ann' });
      m.insert('members', { id: 'c1-bob', conversation_id: 'c1', user_id: 'bob' });
    });
    for (let i = 0; i < 5; i++) await ann.db.mutate('sendMessage', (m) => m.insert('messages', { id: `m${i}`, conversation_id: 'c1', sender_id: 'ann', body: `hello ${i}` }));
    const report = await ann.db.sync.syncNow();
    expect(report.rejected).toEqual([]);
    await bob.db.sync.syncNow();
    expect((await bob.db.rows('messages')).map((m) => m.body)).toEqual(['hello 0', 'hello 1', 'hello 2', 'hello 3', 'hello 4']);
    expect(foreignKeyErrors(world.logs)).toEqual([]);
  });

  it('refuses, on the device, a message whose conversation exists nowhere, naming messages.conversation_id', async () => {
    const ann = await world.deviceFor('ann');
    const error = await ann.db.mutate('sendMessage', (m) => m.insert('messages', { id: 'lost', conversation_id: 'no-such-conversation', sender_id: 'ann', body: '?' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForeignKeyViolation);
    expect(error).toMatchObject({ table: 'messages', column: 'conversation_id', value: 'no-such-conversation', referencedTable: 'conversations' });
    expect(await ann.db.outboxDepth()).toBe(0);
  });
});
