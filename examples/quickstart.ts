/**
 * The newcomer's path: define a two-table schema, bind a user, write
 * offline, and catch the error that names the broken key.
 *
 * Run it with `npm start`; the tests run it too (quickstart.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineSchema, table, text } from '@dovetail/schema';
import { createClient, ForeignKeyViolation } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';

// 1. The schema, once, for the device and (later) the server.
export const schema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({
      columns: { id: text().primaryKey(), name: text() },
      owner: 'id',
      visibility: 'public',
    }),
    posts: table({
      columns: {
        id: text().primaryKey(),
        author_id: text().references('users', { onDelete: 'cascade' }),
        reply_to: text().nullable().references('posts', { onDelete: 'set null' }),
        body: text(),
      },
      owner: 'author_id',
      visibility: 'public',
    }),
  },
});

export async function quickstart(directory: string, log: (line: string) => void): Promise<void> {
  // 2. One client owns the device database; binding opens the user's own file.
  const client = createClient({ schema, driver: nodeDriver({ directory }) });
  const db = await client.bind({ userId: 'u_ann', identity: { name: 'Ann' } });
  log(`bound as ${db.userId}; foreign_keys = ${String((await db.query('PRAGMA foreign_keys'))[0]?.['foreign_keys'])}`);

  // 3. Write offline: rows and outbox entry commit together, no network.
  await db.mutate('createPost', (m) => {
    m.insert('posts', { id: 'p1', author_id: db.userId, body: 'Hello, offline world' });
  });
  await db.mutate('reply', (m) => {
    m.insert('posts', { id: 'p2', author_id: db.userId, reply_to: 'p1', body: 'Replying to myself' });
  });
  log(`posts: ${(await db.rows('posts')).map((p) => `${p.id} "${p.body}"`).join(', ')}`);
  log(`outbox: ${(await db.outbox()).map((e) => e.name).join(', ')} (waiting for sync)`);

  // 4. A write that breaks a key is refused, and the error says which key.
  try {
    await db.mutate('createPost', (m) => m.insert('posts', { id: 'p3', author_id: 'u_42', body: 'Who wrote this?' }));
  } catch (error) {
    if (!(error instanceof ForeignKeyViolation)) throw error;
    log(`refused: ${error.table}.${error.column} = '${String(error.value)}' has no ${error.referencedTable}.${error.referencedColumn}`);
  }
  log(`still ${(await db.rows('posts')).length} posts and ${await db.outboxDepth()} pending mutations; nothing half-written`);

  // 5. Sign-out closes the database (pass { wipe: true } to delete it).
  await client.signOut();
  log('signed out');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const directory = mkdtempSync(join(tmpdir(), 'dovetail-quickstart-'));
  try {
    await quickstart(directory, (line) => console.log(line));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
