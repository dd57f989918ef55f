import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RejectedMutation } from '@dovetail/client';
import { createWorld, foreignKeyErrors } from './support/world.js';
import type { World } from './support/world.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';

let world: World<E2eSchema>;
beforeAll(async () => {
  world = await createWorld(e2eSchema);
  console.log(`end-to-end sync runs on ${world.sql.kind}`);
});
afterAll(() => world.close());

describe('devices and users converge', () => {
  it('syncs offline writes from two users on three devices, parents first, keys on everywhere', async () => {
    const annPhone = await world.deviceFor('ann');
    const annLaptop = await world.deviceFor('ann');
    const bobPhone = await world.deviceFor('bob');
    // Offline: nothing has synced yet.
    await annPhone.db.mutate('createProject', (m) => {
      m.insert('tasks', { id: 't1', project_id: 'p1', title: 'child first, in the same mutation' });
      m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'Ann’s', public: true });
    });
    await annPhone.db.mutate('comment', (m) => m.insert('comments', { id: 'k1', task_id: 't1', author_id: 'ann', body: 'first' }));
    await bobPhone.db.mutate('createProject', (m) => m.insert('projects', { id: 'pb', owner_id: 'bob', title: 'Bob’s secret', public: false }));

    await annPhone.db.sync.syncNow();
    await bobPhone.db.sync.syncNow();
    await annLaptop.db.sync.syncNow();
    await annPhone.db.sync.syncNow();

    expect((await annLaptop.db.rows('comments')).map((c) => c.id)).toEqual(['k1']);
    expect((await bobPhone.db.rows('projects')).map((p) => p.id)).toEqual(['pb']); // projects are their owner's
    expect((await annPhone.db.rows('projects')).map((p) => p.id)).toEqual(['p1']);
    expect((await bobPhone.db.rows('users')).map((u) => u.id)).toEqual(['ann', 'bob']); // users are public
    for (const d of [annPhone, annLaptop, bobPhone]) {
      expect(await d.db.foreignKeyCheck()).toEqual([]);
      expect(await d.db.outboxDepth()).toBe(0);
    }
    expect(await world.rows('projects')).toHaveLength(2);
    expect(foreignKeyErrors(world.logs)).toEqual([]);
  });

  it("never lets a pending change flicker away while others' changes arrive", async () => {
    const a = await world.deviceFor('carol');
    const b = await world.deviceFor('carol');
    await a.db.mutate('p', (m) => m.insert('projects', { id: 'pc', owner_id: 'carol', title: 'v1', public: false }));
    await a.db.sync.syncNow();
    await b.db.sync.syncNow();
    await b.db.mutate('rename', (m) => m.update('projects', 'pc', { title: 'from b' }));
    await b.db.sync.syncNow();
    // A renames offline, then pulls B's change before its own push lands.
    await a.db.mutate('rename', (m) => m.update('projects', 'pc', { title: 'from a (pending)' }));
    const seen: string[] = [];
    a.db.watchRows('projects', { id: 'pc' }, (rows) => seen.push(rows[0]?.title ?? '(none)'));
    await a.db.sync.syncNow();
    expect((await a.db.get('projects', 'pc'))?.title).toBe('from a (pending)');
    expect(seen).not.toContain('from b');
    await b.db.sync.syncNow();
    expect((await b.db.get('projects', 'pc'))?.title).toBe('from a (pending)');
  });
});

describe('refusals (D2, D3, G5)', () => {
  it('keeps a refused mutation in the rejected log, undoes its local effects, and keeps the queue moving', async () => {
    const d = await world.deviceFor('dave');
    await d.db.mutate('p', (m) => {
      m.insert('projects', { id: 'pd', owner_id: 'dave', title: 'keep', public: false });
      m.insert('tasks', { id: 'td', project_id: 'pd', title: 'child' });
      m.insert('comments', { id: 'kd', task_id: 'td', author_id: 'dave', body: 'grandchild' });
    });
    await d.db.sync.syncNow();
    // Dave's other device adds a project this one has not seen yet.
    const other = await world.deviceFor('dave');
    await other.db.mutate('p3', (m) => m.insert('projects', { id: 'pd3', owner_id: 'dave', title: 'elsewhere', public: false }));
    await other.db.sync.syncNow();
    const events: RejectedMutation[] = [];
    d.db.events.on('rejected', (r) => events.push(r));
    // Locally nothing restricts the delete, so it succeeds here; on the server pd3 does.
    await d.db.mutate('deleteAccount', (m) => {
      m.delete('projects', 'pd');
      m.delete('users', 'dave');
    });
    await d.db.mutate('steal', (m) => m.insert('users', { id: 'mallory', name: 'not me' }));
    expect(await d.db.get('tasks', 'td')).toBeUndefined(); // gone locally, for now
    const report = await d.db.sync.syncNow();
    expect(report.rejected.map((r) => r.name).sort()).toEqual(['deleteAccount', 'steal']);
    expect(events.map((e) => e.reason).sort()).toEqual(['forbidden', 'invalid']);
    const log = await d.db.rejected();
    expect(log.find((r) => r.name === 'deleteAccount')).toMatchObject({ rows: expect.arrayContaining(['users:dave', 'projects:pd']) as unknown, message: expect.stringContaining('restrict') as unknown });
    // The next pull undid the local effects: the project, its task and comment are back.
    expect((await d.db.rows('projects')).map((p) => p.id).sort()).toEqual(['pd', 'pd3']);
    expect(await d.db.get('comments', 'kd')).toBeDefined();
    expect(await d.db.get('users', 'mallory')).toBeUndefined();
    expect(await d.db.outboxDepth()).toBe(0);
    // The queue keeps moving.
    await d.db.mutate('fine', (m) => m.insert('projects', { id: 'pd2', owner_id: 'dave', title: 'fine', public: false }));
    const after = await d.db.sync.syncNow();
    expect(after.rejected).toEqual([]);
    expect((await world.rows('projects')).map((p) => p['id'])).toContain('pd2');
    expect(await d.db.foreignKeyCheck()).toEqual([]);
  });
});

describe('identity (I1, D4)', () => {
  it("never pushes A's outbox under B's token, and A's mutations sync when A returns", async () => {
    const shared = world.device('shared');
    let db = await shared.signIn('erin');
    await db.mutate('offline', (m) => m.insert('projects', { id: 'pe', owner_id: 'erin', title: 'erin offline', public: false }));
    await shared.signOut();
    db = await shared.signIn('frank');
    await db.sync.syncNow();
    expect(await db.rows('projects', { owner_id: 'erin' })).toEqual([]);
    expect((await world.rows('projects')).some((p) => p['id'] === 'pe')).toBe(false);
    await shared.signOut();
    db = await shared.signIn('erin');
    await db.sync.syncNow();
    expect((await world.rows('projects')).some((p) => p['id'] === 'pe')).toBe(true);
    await shared.signOut();
  });

  it('refuses to use a token for another user', async () => {
    const d = world.device('mixup');
    const db = await d.signIn('gina', { getToken: async () => (await import('./support/world.js')).tokenFor('hank') });
    const error = await db.sync.syncNow().catch((e: unknown) => e as { code: string });
    expect(error).toMatchObject({ code: 'wrong_owner' });
    await d.signOut();
  });

  it('refreshes an expired token through the app and retries (D4)', async () => {
    const { tokenFor } = await import('./support/world.js');
    let refreshed = 0;
    const d = world.device('expired');
    const db = await d.signIn('ivy', {
      getToken: () => tokenFor('ivy', Math.floor(Date.now() / 1000) - 60),
      refreshToken: () => {
        refreshed++;
        return tokenFor('ivy');
      },
    });
    await db.mutate('p', (m) => m.insert('projects', { id: 'pi', owner_id: 'ivy', title: 'x', public: false }));
    await db.sync.syncNow();
    expect(refreshed).toBe(1);
    expect(await db.outboxDepth()).toBe(0);
    expect(await db.rejected()).toEqual([]);
    await d.signOut();
  });
});
