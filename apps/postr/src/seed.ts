/**
 * Demo data for `dovetail dev`: three users, a short thread with a reply, a
 * quote and a repost, reactions, a bookmark, and a conversation between Ann
 * and Bob. Written straight into Postgres, as any other service could: the
 * capture triggers installed by `SyncServer.setup()` send the rows to the
 * devices like any synced change (G13), so seed after setup.
 */
import { quoteIdent as q } from '@dovetail/schema';
import type { Insert, Schema, TableName } from '@dovetail/schema';
import type { Sql } from '@dovetail/server';
import { bookmarkId, memberId, reactionId, repostId } from './ids.js';
import { schema as postrSchema } from './schema.js';
import type { PostrSchema } from './schema.js';

/** A user the demo data is about; `dovetail dev` prints a token for each. */
export interface DemoUser {
  readonly id: string;
  readonly name: string;
}

type SeedRows = { readonly [K in TableName<PostrSchema>]: readonly Insert<PostrSchema, K>[] };

/** Fixed times, so the demo data is the same on every run. */
const at = (minutes: number): number => Date.UTC(2026, 0, 5, 9, minutes);

const ann = 'ann';
const bob = 'bob';
const cy = 'cy';
const hello = 'seed-hello';
const chat = 'seed-ann-bob';

const demo: SeedRows = {
  users: [
    { id: ann, name: 'Ann', handle: 'ann', bio: 'Writes the sync engine.' },
    { id: bob, name: 'Bob', handle: 'bob', bio: 'Mostly offline, on trains.' },
    { id: cy, name: 'Cy', handle: 'cy', bio: 'Here for the foreign keys.' },
  ],
  // Parents before the posts that point at them (a reply, a quote, a repost).
  posts: [
    { id: hello, author_id: ann, body: 'Hello from Postr! Foreign keys on, on every device.', created_at: at(0) },
    { id: 'seed-bob-reply', author_id: bob, body: 'Written on a train, synced at the station.', reply_to_id: hello, created_at: at(5) },
    { id: 'seed-cy-quote', author_id: cy, body: 'No dangling rows, ever.', quote_of_id: hello, created_at: at(9) },
    { id: repostId(hello, bob), author_id: bob, repost_of_id: hello, created_at: at(12) },
    { id: 'seed-bob-post', author_id: bob, body: 'Offline again. Everything I write waits in the outbox.', created_at: at(20) },
  ],
  reactions: [
    { id: reactionId(hello, cy, '❤️'), post_id: hello, user_id: cy, emoji: '❤️', created_at: at(10) },
    { id: reactionId(hello, bob, '🎉'), post_id: hello, user_id: bob, emoji: '🎉', created_at: at(11) },
    { id: reactionId('seed-bob-reply', ann, '👍'), post_id: 'seed-bob-reply', user_id: ann, emoji: '👍', created_at: at(13) },
  ],
  bookmarks: [{ id: bookmarkId('seed-bob-post', ann), post_id: 'seed-bob-post', user_id: ann, created_at: at(21) }],
  conversations: [{ id: chat, created_by: ann, title: null, created_at: at(30) }],
  conversation_members: [
    { id: memberId(chat, ann), conversation_id: chat, user_id: ann },
    { id: memberId(chat, bob), conversation_id: chat, user_id: bob },
  ],
  messages: [
    { id: 'seed-m1', conversation_id: chat, sender_id: ann, body: 'Lunch tomorrow?', created_at: at(31) },
    { id: 'seed-m2', conversation_id: chat, sender_id: bob, body: 'Yes! I will answer from the train.', created_at: at(33) },
    { id: 'seed-m3', conversation_id: chat, sender_id: ann, body: 'Your message arrives when you do.', created_at: at(34) },
  ],
};

/**
 * Inserts the demo data, in one transaction, tables in key order (parents
 * first). Safe to run again: a row whose id exists is left as it is (`ON
 * CONFLICT (id) DO NOTHING`); any other conflict, such as a handle someone
 * already took, fails the whole seed rather than leaving half of it. Table and column names come from the schema, which
 * must be Postr's: any other throws, naming the missing table.
 */
export async function seed(sql: Sql, schema: Schema = postrSchema): Promise<DemoUser[]> {
  const rows = demo as Readonly<Record<string, readonly Record<string, unknown>[]>>;
  const tables = schema.tables.filter((t) => rows[t.name]);
  for (const name of Object.keys(rows)) schema.table(name); // throws for a schema that is not Postr's
  await sql.transaction(async (tx) => {
    for (const table of tables) {
      const columns = new Map(table.columns.map((c) => [c.name, c]));
      for (const row of rows[table.name] ?? []) {
        const names = Object.keys(row).filter((c) => row[c] !== undefined);
        const unknown = names.find((c) => !columns.has(c));
        if (unknown) throw new Error(`seed: ${table.name} has no column '${unknown}' in this schema`);
        await tx.query(
          `INSERT INTO ${q(table.name)} (${names.map(q).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (${q(table.primaryKey)}) DO NOTHING`,
          names.map((c) => row[c]),
        );
      }
    }
  });
  return demo.users.map((u) => ({ id: u.id, name: u.name ?? u.id }));
}
