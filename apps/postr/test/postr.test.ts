/**
 * Postr end to end: a real sync server (embedded PGlite, or the Postgres
 * named by DATABASE_URL), real SQLite files on every device, real HTTP.
 * Ann has a phone and a laptop, Bob a phone, Cy a phone. They post, reply,
 * quote, react, repost, bookmark and chat, some of it offline; every step
 * ends with all devices synced and the invariants checked on the databases
 * themselves: each device holds exactly what its user may see, no key is
 * broken anywhere, no 23503 reached the server.
 */
import Sqlite from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { diagnose, renderReport } from '@dovetail/cli';
import { ForeignKeyViolation, httpTransport } from '@dovetail/client';
import { defineSchema, table, text } from '@dovetail/schema';
import {
  bookmark,
  bookmarkId,
  bookmarks,
  conversations,
  deletePost,
  messages,
  post,
  quote,
  react,
  reactionId,
  reply,
  repost,
  repostId,
  schema,
  seed,
  sendMessage,
  startConversation,
  thread,
  timeline,
  updateProfile,
  watchMessages,
  watchTimeline,
} from 'postr';
import type { ChatMessage, PostrDatabase, PostrSchema, TimelineEntry } from 'postr';
import { createWorld, foreignKeyErrors, manualTimers, tokenFor } from '../../../e2e/support/world.js';
import type { Device, World } from '../../../e2e/support/world.js';
import { deviceRows, foreignKeyCheck, orphans, tables, visibleRows } from './support/invariants.js';
import { network } from './support/network.js';
import type { Network } from './support/network.js';

/** One database for the whole file: the demo data first (on a fresh database), then the story. */
let world: World<PostrSchema>;
beforeAll(async () => {
  world = await createWorld(schema);
});
afterAll(() => world.close());

/** A device with one user signed in, and its network switch. */
interface Phone {
  readonly name: string;
  readonly user: string;
  readonly device: Device<PostrSchema>;
  readonly db: PostrDatabase;
  readonly net: Network;
}

async function signIn(name: string, user: string): Promise<Phone> {
  const net = network(world.server.url);
  const device = world.device(name);
  const db = await device.signIn(user, { transport: net.transport });
  return { name, user, device, db, net };
}

/** The writers' clock: a minute between any two writes, so every order is certain. */
let now = Date.UTC(2026, 2, 2, 8, 0);
const tick = (): number => (now += 60_000);

/** Two rounds: the first pushes everyone's writes, the second brings them to everyone. */
async function syncAll(phones: readonly Phone[]): Promise<void> {
  for (let round = 0; round < 2; round++) for (const p of phones) await p.db.sync.syncNow();
}

/** At rest: each device holds exactly the server rows its user may see, and every key holds, there and on the server. */
async function expectConverged(phones: readonly Phone[]): Promise<void> {
  for (const p of phones) {
    expect(await p.db.outboxDepth(), `${p.name}: outbox`).toBe(0);
    for (const table of tables) expect(await deviceRows(p.db, table), `${p.name}: ${table}`).toEqual(await visibleRows(world.sql, table, p.user));
    expect(await foreignKeyCheck(p.db), `${p.name}: PRAGMA foreign_key_check`).toEqual([]);
  }
  expect(await orphans(world.sql), 'Postgres rows whose key points at nothing').toEqual([]);
  expect(foreignKeyErrors(world.logs)).toEqual([]);
}

async function settle(phones: readonly Phone[]): Promise<void> {
  await syncAll(phones);
  await expectConverged(phones);
}

describe('the demo data', () => {
  it('seeds a fresh database, twice without harm, and Ann’s device syncs the seeded timeline and her conversation', async () => {
    const count = async (): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {};
      for (const table of tables) counts[table] = Number((await world.sql.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n);
      return counts;
    };
    const users = await seed(world.sql, schema);
    const once = await count();
    expect(once).toEqual({ users: 3, posts: 5, reactions: 3, bookmarks: 1, conversations: 1, conversation_members: 2, messages: 3 });
    expect(await seed(world.sql, schema)).toEqual(users);
    expect(await count()).toEqual(once);
    expect(users).toEqual([
      { id: 'ann', name: 'Ann' },
      { id: 'bob', name: 'Bob' },
      { id: 'cy', name: 'Cy' },
    ]);

    const ann = await signIn('seeded-ann', 'ann');
    await ann.db.sync.syncNow();
    expect(await timeline(ann.db)).toMatchObject([
      { id: 'seed-bob-post', reposted_by: null, author_name: 'Bob' },
      { id: repostId('seed-hello', 'bob'), reposted_by: 'Bob', post_id: 'seed-hello', author_name: 'Ann' },
      { id: 'seed-cy-quote', quote_of_id: 'seed-hello', quoted_author_name: 'Ann', body: 'No dangling rows, ever.' },
      { id: 'seed-hello', replies: 1, quotes: 1, reposts: 1, reactions: 2 },
    ]);
    expect(await thread(ann.db, 'seed-hello')).toMatchObject([
      { id: 'seed-hello', depth: 0 },
      { id: 'seed-bob-reply', depth: 1, author_name: 'Bob' },
    ]);
    expect(await conversations(ann.db)).toMatchObject([{ id: 'seed-ann-bob', members: 'Ann, Bob', last_message: 'Your message arrives when you do.' }]);
    expect((await messages(ann.db, 'seed-ann-bob')).map((m) => m.sender_name)).toEqual(['Ann', 'Bob', 'Ann']);
    expect(await bookmarks(ann.db)).toMatchObject([{ post_id: 'seed-bob-post' }]);
    await expectConverged([ann]);
    await ann.device.signOut();
  });
});

/**
 * The story's users are the demo users: after the test above it plays on top
 * of the demo data, and its checks hold with or without it.
 */
describe('a day on Postr: Ann on two devices, Bob, and Cy who is not in their conversation', () => {
  let annPhone: Phone;
  let annLaptop: Phone;
  let bobPhone: Phone;
  let cyPhone: Phone;
  const everyone = (): Phone[] => [annPhone, annLaptop, bobPhone, cyPhone];

  beforeAll(async () => {
    annPhone = await signIn('ann-phone', 'ann');
    annLaptop = await signIn('ann-laptop', 'ann');
    bobPhone = await signIn('bob-phone', 'bob');
    cyPhone = await signIn('cy-phone', 'cy');
    await syncAll(everyone()); // every profile is on the server and on every device
  });

  it('Ann posts offline on her phone: the post shows at once and waits in the outbox', async () => {
    annPhone.net.online = false;
    await post(annPhone.db, 'Morning! Written in a tunnel.', { id: 'hello', at: tick() });
    expect((await timeline(annPhone.db))[0]).toMatchObject({ id: 'hello', author_id: 'ann', replies: 0 });
    await expect(annPhone.db.sync.syncNow()).rejects.toMatchObject({ code: 'network' });
    expect(await annPhone.db.outboxDepth()).toBe(1);
    expect(await annLaptop.db.get('posts', 'hello')).toBeUndefined();

    annPhone.net.online = true;
    await settle(everyone());
    expect(await annLaptop.db.get('posts', 'hello')).toMatchObject({ body: 'Morning! Written in a tunnel.' });
  });

  it('Bob replies and quotes; Ann reacts from her laptop and from her offline phone, and they make one reaction', async () => {
    await reply(bobPhone.db, 'hello', 'Tunnels are the best place to write.', { id: 'bob-reply', at: tick() });
    await quote(bobPhone.db, 'hello', 'Every app should work like this offline.', { id: 'bob-quote', at: tick() });
    await bobPhone.db.sync.syncNow();

    // Ann's laptop watches its timeline: Bob's posts appear when the laptop pulls them.
    const seen: TimelineEntry[][] = [];
    const stop = watchTimeline(annLaptop.db, (entries) => seen.push(entries));
    await annLaptop.db.sync.syncNow();
    await vi.waitFor(() => expect(seen.at(-1)?.[0]).toMatchObject({ id: 'bob-quote', quote_of_id: 'hello', quoted_body: 'Morning! Written in a tunnel.' }));
    stop();

    await annPhone.db.sync.syncNow();
    annPhone.net.online = false;
    await react(annLaptop.db, 'bob-quote', '❤️', { at: tick() });
    await annLaptop.db.sync.syncNow();
    await react(annPhone.db, 'bob-quote', '❤️', { at: tick() }); // offline, the same reaction again
    annPhone.net.online = true;
    const report = await annPhone.db.sync.syncNow();
    expect(report.rejected).toEqual([]); // same id, same owner: the second write lands on the first row
    expect((await world.rows('reactions')).filter((r) => r['post_id'] === 'bob-quote')).toMatchObject([{ id: reactionId('bob-quote', 'ann', '❤️'), user_id: 'ann' }]);

    await settle(everyone());
    expect((await thread(cyPhone.db, 'hello')).map((p) => [p.id, p.depth])).toEqual([
      ['hello', 0],
      ['bob-reply', 1],
    ]);
  });

  it('Bob reposts; Ann bookmarks, and no one else ever receives her bookmark', async () => {
    await repost(bobPhone.db, 'hello', { at: tick() });
    await bookmark(annPhone.db, 'bob-reply', { at: tick() });
    await settle(everyone());

    const entries = await timeline(annLaptop.db);
    const bob = await annLaptop.db.get('users', 'bob');
    expect(entries.slice(0, 3)).toMatchObject([
      { id: repostId('hello', 'bob'), reposted_by: bob?.name, post_id: 'hello', author_id: 'ann' },
      { id: 'bob-quote', quote_of_id: 'hello', reactions: 1 },
      { id: 'hello', replies: 1, quotes: 1, reposts: 1, reactions: 0 },
    ]);
    expect(await annLaptop.db.get('bookmarks', bookmarkId('bob-reply', 'ann'))).toMatchObject({ user_id: 'ann', post_id: 'bob-reply' });
    expect((await bookmarks(annLaptop.db)).map((b) => b.post_id)).toContain('bob-reply');
    expect(await bobPhone.db.rows('bookmarks')).toEqual([]);
    expect(await cyPhone.db.rows('bookmarks')).toEqual([]);
  });

  it('Ann and Bob chat while Bob is offline; Cy never sees the conversation and cannot write into it', async () => {
    const chat = await startConversation(annLaptop.db, ['bob'], { id: 'ann-bob', at: tick() });
    await sendMessage(annLaptop.db, chat, 'Coffee at ten?', { id: 'm1', at: tick() });
    await annLaptop.db.sync.syncNow();
    await bobPhone.db.sync.syncNow();

    bobPhone.net.online = false;
    await sendMessage(bobPhone.db, chat, 'Yes!', { id: 'm2', at: tick() });
    await sendMessage(bobPhone.db, chat, 'On the train, no signal; this goes when I can.', { id: 'm3', at: tick() });
    await annPhone.db.sync.syncNow();
    await sendMessage(annPhone.db, chat, 'See you there.', { id: 'm4', at: tick() });
    await annPhone.db.sync.syncNow();
    expect((await messages(bobPhone.db, chat)).map((m) => m.id)).toEqual(['m1', 'm2', 'm3']); // his own, at once

    const live: ChatMessage[][] = [];
    const stop = watchMessages(annLaptop.db, chat, (rows) => live.push(rows));
    bobPhone.net.online = true;
    await settle(everyone());
    await vi.waitFor(() => expect(live.at(-1)?.map((m) => m.id)).toEqual(['m1', 'm2', 'm3', 'm4']));
    stop();
    for (const p of [annPhone, annLaptop, bobPhone]) {
      expect((await messages(p.db, chat)).map((m) => [m.sender_id, m.body]), p.name).toEqual([
        ['ann', 'Coffee at ten?'],
        ['bob', 'Yes!'],
        ['bob', 'On the train, no signal; this goes when I can.'],
        ['ann', 'See you there.'],
      ]);
    }
    expect((await conversations(bobPhone.db)).find((c) => c.id === chat)).toMatchObject({ last_message: 'See you there.' });

    expect(await cyPhone.db.get('conversations', chat)).toBeUndefined();
    expect(await cyPhone.db.rows('conversation_members', { conversation_id: chat })).toEqual([]);
    expect(await cyPhone.db.rows('messages', { conversation_id: chat })).toEqual([]);
    expect(await conversations(cyPhone.db)).toEqual([]);
    const error = await sendMessage(cyPhone.db, chat, 'Can I join?').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForeignKeyViolation);
    expect(error).toMatchObject({ table: 'messages', column: 'conversation_id', value: chat, referencedTable: 'conversations' });
  });

  it('a post deleted while Bob answers it offline: his late reply and quote are refused and kept, his repost goes with it', async () => {
    await post(annLaptop.db, 'Hot take, may delete later.', { id: 'take', at: tick() });
    await settle(everyone());
    await reply(bobPhone.db, 'take', 'Bold.', { id: 'early-reply', at: tick() });
    await quote(bobPhone.db, 'take', 'Saving this one.', { id: 'early-quote', at: tick() });
    await settle(everyone());

    bobPhone.net.online = false;
    await reply(bobPhone.db, 'take', 'I disagree, and here is why…', { id: 'late-reply', at: tick() });
    await quote(bobPhone.db, 'take', 'Look at this.', { id: 'late-quote', at: tick() });
    await repost(bobPhone.db, 'take', { at: tick() });

    await deletePost(annLaptop.db, 'take');
    // At once on her laptop: the reply goes with the thread, the quote stays, unlinked.
    expect(await annLaptop.db.get('posts', 'early-reply')).toBeUndefined();
    expect(await annLaptop.db.get('posts', 'early-quote')).toMatchObject({ quote_of_id: null, body: 'Saving this one.' });
    await annLaptop.db.sync.syncNow();

    bobPhone.net.online = true;
    const report = await bobPhone.db.sync.syncNow();
    expect(report.rejected.map((r) => [r.name, r.reason])).toEqual([
      ['reply', 'parent_deleted'],
      ['quote', 'parent_deleted'],
    ]);
    const late = (await bobPhone.db.rejected()).find((r) => r.rows.includes('posts:late-reply'));
    expect(late).toMatchObject({ name: 'reply', reason: 'parent_deleted', ops: [{ op: 'insert', table: 'posts', row: { id: 'late-reply', body: 'I disagree, and here is why…' } }] });
    expect(late?.message).toContain("posts.reply_to_id = 'take'");

    await settle(everyone());
    for (const p of everyone()) {
      for (const gone of ['take', 'early-reply', 'late-reply', 'late-quote', repostId('take', 'bob')]) expect(await p.db.get('posts', gone), `${p.name}: ${gone}`).toBeUndefined();
      expect(await p.db.get('posts', 'early-quote'), p.name).toMatchObject({ quote_of_id: null });
    }
    expect((await world.rows('posts')).map((r) => r['id'])).not.toContain('take');
  });

  it('ends converged: every device holds exactly what its user may see, and keys hold everywhere', async () => {
    await settle(everyone());
    // And the doctor, which knows nothing of this test, finds nothing wrong
    // on any device file or on the server.
    const files = everyone().flatMap((p) => readdirSync(p.device.directory).filter((f) => f.endsWith('.db')).map((f) => join(p.device.directory, f)));
    expect(files.length).toBeGreaterThanOrEqual(everyone().length);
    for (const path of files) {
      const report = await diagnose({ kind: 'sqlite', path }, { schema });
      expect(report.findings.filter((f) => f.severity === 'problem'), path).toEqual([]);
      expect(report.healthy, renderReport(report)).toBe(true);
    }
    const server = await diagnose({ kind: 'postgres', sql: world.sql }, { schema });
    expect(server.healthy, renderReport(server)).toBe(true);
  });
});

/**
 * Cases found while building Postr, kept as regression tests. Each uses
 * users of its own, so it can run in any order.
 */
describe('unique values and identity rows', () => {
  it('a pull that moves a unique value (a handle) from one row to another applies, although SQLite checks UNIQUE row by row', async () => {
    const dee = await signIn('dee-phone', 'dee');
    const eve = await signIn('eve-phone', 'eve');
    await updateProfile(dee.db, { handle: 'dee' });
    await updateProfile(eve.db, { handle: 'eve' });
    await syncAll([dee, eve]);
    // Written straight into Postgres (G13): they swap handles in one transaction.
    await world.sql.transaction(async (tx) => {
      await tx.query(`UPDATE users SET handle = NULL WHERE id = 'eve'`);
      await tx.query(`UPDATE users SET handle = 'eve' WHERE id = 'dee'`);
      await tx.query(`UPDATE users SET handle = 'dee' WHERE id = 'eve'`);
    });
    await expect(dee.db.sync.syncNow()).resolves.toMatchObject({ rejected: [] });
    expect(await dee.db.get('users', 'dee')).toMatchObject({ handle: 'eve' });
    expect(await dee.db.get('users', 'eve')).toMatchObject({ handle: 'dee' });
  });

  it('two users claim one handle offline: the loser is refused, and the pull that follows puts both rows right', async () => {
    const fay = await signIn('fay-phone', 'fay');
    const gus = await signIn('gus-phone', 'gus');
    await syncAll([fay, gus]);
    await updateProfile(fay.db, { handle: 'first' });
    await updateProfile(gus.db, { handle: 'first' });
    await fay.db.sync.syncNow();
    const report = await gus.db.sync.syncNow();
    expect(report.rejected).toMatchObject([{ name: 'updateProfile', reason: 'invalid' }]);
    expect(await gus.db.get('users', 'gus')).toMatchObject({ handle: null });
    expect(await gus.db.get('users', 'fay')).toMatchObject({ handle: 'first' });
  });

  it('a handle claimed on the device during a sync, already taken on the server: the pull sets the claim aside, the push is refused, and all converge', async () => {
    const hal = await signIn('hal-phone', 'hal');
    const ivy = await signIn('ivy-phone', 'ivy');
    await syncAll([hal, ivy]);
    await updateProfile(hal.db, { handle: 'taken' });
    await hal.db.sync.syncNow();
    // Ivy claims it between her sync's push and its pull. Her pending row
    // comes back in the batch, so it is parked, not a conflict.
    ivy.net.beforePull = async () => {
      ivy.net.beforePull = undefined;
      await updateProfile(ivy.db, { handle: 'taken' });
    };
    await expect(ivy.db.sync.syncNow()).resolves.toMatchObject({ rejected: [] });
    expect(await ivy.db.get('users', 'hal')).toMatchObject({ handle: 'taken' });
    expect(await ivy.db.outboxDepth()).toBe(1);
    const report = await ivy.db.sync.syncNow();
    expect(report.rejected).toMatchObject([{ name: 'updateProfile', reason: 'invalid' }]);
    expect(await ivy.db.get('users', 'ivy')).toMatchObject({ handle: null });
    await settle([hal, ivy]);
  });

  it('a device file changed behind the engine (a handle the server never gave): the pull stops with pull_conflict, and the next sync starts over and converges', async () => {
    const jo = await signIn('jo-phone', 'jo');
    const kim = await signIn('kim-phone', 'kim');
    await syncAll([jo, kim]);
    const file = readdirSync(kim.device.directory).find((f) => f.endsWith('.db')) ?? '';
    const edit = new Sqlite(join(kim.device.directory, file));
    edit.prepare(`UPDATE users SET handle = 'edited' WHERE id = 'jo'`).run();
    edit.close();
    // The server gives that handle to Kim (written straight into Postgres).
    await world.sql.query(`UPDATE users SET handle = 'edited' WHERE id = 'kim'`);
    await expect(kim.db.sync.syncNow()).rejects.toMatchObject({ code: 'pull_conflict' });
    await kim.db.sync.syncNow();
    expect(await kim.db.get('users', 'kim')).toMatchObject({ handle: 'edited' });
    expect(await kim.db.get('users', 'jo')).toMatchObject({ handle: null });
    await settle([jo, kim]);
  });

  it('an identity table with a required unique column (handle: text().unique()) lets every user in: the server fills it with the user id', async () => {
    // Postr's handle is nullable for this reason too; this is the schema it avoids.
    const strict = defineSchema({
      version: 1,
      identity: 'users',
      tables: { users: table({ columns: { id: text().primaryKey(), handle: text().unique() }, owner: 'id', visibility: 'public' }) },
    });
    const other = await createWorld(strict);
    try {
      for (const user of ['hal', 'ida']) {
        const db = await other.device(user).client.bind({
          userId: user,
          identity: { handle: user },
          sync: { transport: httpTransport({ url: other.server.url }), getToken: () => tokenFor(user), timers: manualTimers },
        });
        await expect(db.sync.syncNow(), user).resolves.toBeDefined();
      }
    } finally {
      await other.close();
    }
  });
});
