import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemTimers as realTimers } from '@dovetail/client';
import { createWorld } from './support/world.js';
import type { World } from './support/world.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';

let world: World<E2eSchema>;
beforeAll(async () => {
  world = await createWorld(e2eSchema);
});
afterAll(() => world.close());

/** Resolves when `check` passes, polling on live-query deliveries and a short timer; fails after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not true within ${ms} ms`);
}

it('a write on one device reaches another through a poke, with no explicit sync', async () => {
  const writer = await world.deviceFor('rita', { timers: realTimers });
  const reader = await world.deviceFor('rita', { timers: realTimers });
  // Let the reader's poke channel say hello.
  await eventually(async () => (await fetch(`${world.server.url}/health`).then((r) => r.json() as Promise<{ connectedDevices: number }>)).connectedDevices >= 2);
  const seen: string[][] = [];
  reader.db.watchRows('projects', {}, (rows) => seen.push(rows.map((r) => r.id)));
  await writer.db.mutate('create', (m) => m.insert('projects', { id: 'rt-1', owner_id: 'rita', title: 'live', public: false }));
  // The writer syncs shortly after its write, the server pokes, the reader pulls.
  await eventually(async () => (await reader.db.get('projects', 'rt-1')) !== undefined);
  await eventually(() => Promise.resolve(seen.some((ids) => ids.includes('rt-1'))));
  await eventually(async () => (await writer.db.outboxDepth()) === 0);
});

it('sign-out stops sync and realtime before the database closes', async () => {
  const d = await world.deviceFor('sam', { timers: realTimers });
  await d.db.mutate('p', (m) => m.insert('projects', { id: 'so-1', owner_id: 'sam', title: 'x', public: false }));
  await d.signOut();
  expect(d.client.state).toBe('signed_out');
  // Nothing keeps running for Sam: a write elsewhere does not touch his closed file, and no timer fires into it.
  const other = await world.deviceFor('sam');
  await other.db.mutate('q', (m) => m.insert('projects', { id: 'so-2', owner_id: 'sam', title: 'y', public: false }));
  await other.db.sync.syncNow();
  await new Promise((r) => setTimeout(r, 100));
  expect(d.client.state).toBe('signed_out');
  await expect(d.db.sync.syncNow()).rejects.toMatchObject({ code: 'not_bound' });
});

it('overlapping sync requests are served by one more sync, not by an endless loop', async () => {
  const { httpTransport } = await import('@dovetail/client');
  const http = httpTransport({ url: world.server.url });
  let pulls = 0;
  const counting = { push: http.push.bind(http), pull: (...args: Parameters<typeof http.pull>) => (pulls++, http.pull(...args)) };
  const d = await world.deviceFor('tom', { timers: realTimers, transport: counting, intervalMs: 60_000 });
  await Promise.all([d.db.sync.syncNow(), d.db.sync.syncNow(), d.db.sync.syncNow()]);
  const afterBurst = pulls;
  await new Promise((r) => setTimeout(r, 300));
  expect(afterBurst).toBeLessThanOrEqual(3); // the bind-time sync, the burst, one follow-up
  expect(pulls).toBe(afterBurst); // and then quiet
});
