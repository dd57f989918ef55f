import { afterAll, beforeAll, expect, it } from 'vitest';
import { createWorld } from './support/world.js';
import type { World } from './support/world.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';

/**
 * A server whose HTTP body limit is small (64 KB): what a device must do
 * when its own requests outgrow it. (Limits of mutations per push and of
 * rows a pull may name: e2e/scheduling.test.ts.)
 */

const LIMIT = 64 * 1024;
let world: World<E2eSchema>;
beforeAll(async () => {
  world = await createWorld(e2eSchema, { maxBodyBytes: LIMIT });
});
afterAll(() => world.close());

it('a pull that names more rows than the body limit takes becomes a resync; nothing is lost or refused', { timeout: 60_000 }, async () => {
  const device = await world.deviceFor('lim');
  await device.db.sync.syncNow();
  const ids = Array.from({ length: 1_500 }, (_, i) => `imported-project-number-${String(i).padStart(5, '0')}`);
  for (const id of ids) await device.db.mutate('import', (m) => m.insert('projects', { id, owner_id: 'lim', title: 'imported', public: false }));
  // Each push fits (100 mutations); the pull after them would name all 1,500 rows, about 100 KB.
  const refreshBytes = JSON.stringify(ids.map((id) => ({ table: 'projects', id }))).length;
  expect(refreshBytes).toBeGreaterThan(LIMIT);
  const report = await device.db.sync.syncNow();
  expect(report.pushed).toBe(1_500);
  expect(report.rejected).toEqual([]);
  expect(await device.db.outboxDepth()).toBe(0);
  expect((await device.db.rows('projects')).map((p) => p.id)).toEqual(ids);
  expect((await world.rows('projects')).map((p) => p['id'])).toEqual(ids);
  expect(await device.db.foreignKeyCheck()).toEqual([]);
});

it('pushes go out in halves until they fit the body limit; a mutation too large to send alone is refused on the device, and the rest flow', { timeout: 60_000 }, async () => {
  const device = await world.deviceFor('big');
  await device.db.sync.syncNow();
  const ids = Array.from({ length: 300 }, (_, i) => `big-${String(i).padStart(3, '0')}`);
  for (const id of ids.slice(0, 150)) await device.db.mutate('note', (m) => m.insert('projects', { id, owner_id: 'big', title: 'x'.repeat(900), public: false }));
  await device.db.mutate('huge', (m) => m.insert('projects', { id: 'big-huge', owner_id: 'big', title: 'x'.repeat(2 * LIMIT), public: false }));
  for (const id of ids.slice(150)) await device.db.mutate('note', (m) => m.insert('projects', { id, owner_id: 'big', title: 'x'.repeat(900), public: false }));
  // 100 of these mutations make a body of about 100 KB: over the limit.
  const report = await device.db.sync.syncNow();
  expect(report.pushed).toBe(300);
  expect(await device.db.outboxDepth()).toBe(0);
  const rejected = await device.db.rejected();
  expect(rejected.map((r) => [r.name, r.reason])).toEqual([['huge', 'too_large']]);
  expect(rejected[0]?.message).toMatch(/larger than the server accepts.*split it into smaller mutations/);
  expect((await world.rows('projects')).map((p) => p['id']).filter((id) => String(id).startsWith('big-'))).toEqual(ids);
  // The refused row is undone on the device; the others stay.
  expect((await device.db.rows('projects')).map((p) => p.id)).toEqual(ids);
});
