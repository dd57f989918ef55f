/**
 * `npm run demo`: two users on three devices, told in words. Offline
 * writes, sync, a refusal, a parent deleted while someone offline writes a
 * child of it, and an account switch on a shared device. Everything is
 * real: a sync server on embedded Postgres, SQLite files, HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { createClient, httpTransport } from '@dovetail/client';
import type { Database, DovetailClient, Timers } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { createAuthenticator, embeddedSql, startHttpServer, SyncServer } from '@dovetail/server';
import { exampleSchema } from './schema.js';
import type { ExampleSchema } from './schema.js';

const SECRET = 'demo-secret-long-enough-for-hs256';
/** The demo syncs when it says so; nothing happens behind the reader's back. */
const byHand: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined };

export async function demo(say: (line: string) => void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'dovetail-demo-'));
  const sql = await embeddedSql();
  const server = new SyncServer({ schema: exampleSchema, sql, authenticate: createAuthenticator({ secret: SECRET }) });
  await server.setup();
  const http = await startHttpServer(server);
  const token = (user: string): Promise<string> =>
    new SignJWT({ name: user }).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const devices: DovetailClient<ExampleSchema>[] = [];
  const device = (name: string): DovetailClient<ExampleSchema> => {
    const client = createClient({ schema: exampleSchema, driver: nodeDriver({ directory: join(root, name) }) });
    devices.push(client);
    return client;
  };
  const signIn = (client: DovetailClient<ExampleSchema>, user: string): Promise<Database<ExampleSchema>> =>
    client.bind({ userId: user, identity: { name: user }, sync: { transport: httpTransport({ url: http.url }), getToken: () => token(user), timers: byHand } });
  const titles = async (db: Database<ExampleSchema>, table: 'projects' | 'tasks' | 'comments'): Promise<string> => {
    const rows: Record<string, unknown>[] = await db.rows(table);
    return rows.map((r) => String(r['title'] ?? r['body'] ?? r['id'])).join(', ') || '(none)';
  };

  try {
    say(`A sync server is running on ${http.url}, on embedded Postgres. Foreign keys are on there, and on every device.`);

    const annPhone = await signIn(device('ann-phone'), 'ann');
    const annLaptop = await signIn(device('ann-laptop'), 'ann');
    const bobPhone = await signIn(device('bob-phone'), 'bob');
    say('Ann has a phone and a laptop; Bob has a phone. Each device keeps its own SQLite file per user.');

    say('\n1. Offline writes');
    await annPhone.mutate('createProject', (m) => {
      m.insert('tasks', { id: 't-milk', project_id: 'p-home', title: 'Buy milk' }); // a child before its parent: fine within one mutation
      m.insert('projects', { id: 'p-home', owner_id: 'ann', title: 'Home' });
    });
    await annPhone.mutate('addSubtask', (m) => m.insert('tasks', { id: 't-oat', project_id: 'p-home', parent_task_id: 't-milk', title: 'Oat milk, if they have it' }));
    say(`Ann's phone, offline, creates the project "Home" with a task and a subtask. Its outbox holds ${await annPhone.outboxDepth()} mutations.`);
    await bobPhone.mutate('createProject', (m) => m.insert('projects', { id: 'p-bike', owner_id: 'bob', title: 'Fix the bike' }));
    say('Bob\'s phone, offline too, creates "Fix the bike".');

    say('\n2. Sync');
    await annPhone.sync.syncNow();
    await bobPhone.sync.syncNow();
    await annLaptop.sync.syncNow();
    await annPhone.sync.syncNow();
    say(`Everyone syncs. Ann's laptop now shows projects: ${await titles(annLaptop, 'projects')}; tasks: ${await titles(annLaptop, 'tasks')}.`);
    say(`Bob sees the public projects too: ${await titles(bobPhone, 'projects')}. Outboxes are empty: ${await annPhone.outboxDepth()}, ${await bobPhone.outboxDepth()}.`);

    say('\n3. A refusal');
    await bobPhone.mutate('renameProject', (m) => m.update('projects', 'p-home', { title: 'Bob was here' }));
    say(`Bob renames Ann's project on his phone. Locally it reads "${(await bobPhone.get('projects', 'p-home'))?.title ?? ''}" for a moment.`);
    await bobPhone.sync.syncNow();
    const [refused] = await bobPhone.rejected();
    say(`The server refuses it: ${refused?.reason ?? '?'} — ${refused?.message ?? ''}`);
    say(`Bob's phone keeps the refused mutation in its rejected log and shows "${(await bobPhone.get('projects', 'p-home'))?.title ?? ''}" again.`);

    say('\n4. A parent deleted while someone writes a child offline');
    await bobPhone.mutate('comment', (m) => m.insert('comments', { id: 'c-1', task_id: 't-milk', author_id: 'bob', body: 'I can pick it up' }));
    say('Bob, offline, comments on "Buy milk".');
    await annLaptop.mutate('deleteTask', (m) => m.delete('tasks', 't-milk'));
    await annLaptop.sync.syncNow();
    say('Meanwhile Ann deletes "Buy milk" on her laptop and syncs (its subtask stays, detached: that key is "set null").');
    await bobPhone.sync.syncNow();
    const rejected = await bobPhone.rejected();
    const late = rejected.find((r) => r.name === 'comment');
    say(`Bob syncs. The comments key says "reject" for this case, so his comment is refused: ${late?.reason ?? '?'}. No dangling row anywhere, no error in the server log.`);
    say(`Bob's phone now shows tasks: ${await titles(bobPhone, 'tasks')}; comments: ${await titles(bobPhone, 'comments')}.`);

    say('\n5. Account switch on a shared device');
    const tablet = device('shared-tablet');
    const bobOnTablet = await signIn(tablet, 'bob');
    await bobOnTablet.mutate('draft', (m) => m.insert('projects', { id: 'p-draft', owner_id: 'bob', title: 'Bob\'s draft' }));
    await tablet.signOut();
    say('Bob writes a draft on a shared tablet and signs out before it syncs.');
    const annOnTablet = await signIn(tablet, 'ann');
    await annOnTablet.sync.syncNow();
    say(`Ann signs in on the tablet: her own database file. She sees projects: ${await titles(annOnTablet, 'projects')}. Bob's draft is not there, and was not pushed with Ann's token.`);
    await tablet.signOut();
    const bobAgain = await signIn(tablet, 'bob');
    await bobAgain.sync.syncNow();
    say(`Bob signs in again: his draft is still in his outbox, and syncs now. The server has: ${(await sql.query<{ title: string }>('SELECT title FROM projects ORDER BY title')).map((r) => r.title).join(', ')}.`);

    say('\nEvery device passes PRAGMA foreign_key_check; so does the server. That is the whole point.');
  } finally {
    for (const d of devices) await d.signOut().catch(() => undefined);
    await http.close();
    await sql.close();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await demo((line) => console.log(line));
}
