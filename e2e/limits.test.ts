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
