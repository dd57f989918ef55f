import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpTransport } from '@dovetail/client';
import type { SyncTransport, WebSocketLike } from '@dovetail/client';
import { createWorld } from './support/world.js';
import type { World } from './support/world.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';

let world: World<E2eSchema>;
beforeAll(async () => {
  world = await createWorld(e2eSchema);
});
afterAll(() => world.close());

/** The HTTP transport with every pull answer passed through `change` on its way to the device. */
function pullsThrough(change: (page: Awaited<ReturnType<SyncTransport['pull']>>) => Awaited<ReturnType<SyncTransport['pull']>>): SyncTransport {
  const http = httpTransport({ url: world.server.url, webSocket: WebSocket as unknown as new (u: string) => WebSocketLike });
  return {
    push: (r, t, s) => http.push(r, t, s),
    pull: async (r, t, s) => change(await http.pull(r, t, s)),
  };
}

/** A project of `user` with a task, a subtask and a comment on it (four key levels), pushed from a device of theirs. */
async function pushTree(user: string, p: string): Promise<void> {
  const author = await world.deviceFor(user);
  await author.db.mutate('tree', (m) => {
    m.insert('projects', { id: p, owner_id: user, title: 'P', public: false });
    m.insert('tasks', { id: `${p}-t1`, project_id: p, title: 'root' });
    m.insert('tasks', { id: `${p}-t2`, project_id: p, parent_task_id: `${p}-t1`, title: 'child' });
    m.insert('comments', { id: `${p}-k`, task_id: `${p}-t2`, author_id: user, body: 'deep' });
  });
  await author.db.sync.syncNow();
}

it('applies a first sync that arrives children first, with keys on, every referenced user present (O1)', async () => {
  await pushTree('uma', 'o1');
  // A transport that hands the client every change in reverse: children before parents.
  const reversed = pullsThrough((page) => ({ ...page, changes: [...page.changes].reverse() }));
  const reader = world.device('uma-new');
  const db = await reader.signIn('uma', { transport: reversed });
  await db.sync.syncNow();
  expect((await db.rows('comments')).map((c) => c.id)).toEqual(['o1-k']);
  expect((await db.rows('users')).map((u) => u.id)).toEqual(['uma']);
  expect(await db.foreignKeyCheck()).toEqual([]);
  expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
});

it('applies a first sync that carries a row twice: the later copy wins, keys on', async () => {
  const author = await world.deviceFor('una');
  await author.db.mutate('tree', (m) => {
    m.insert('projects', { id: 'o2', owner_id: 'una', title: 'P', public: false });
    m.insert('tasks', { id: 'o2-t1', project_id: 'o2', title: 'first' });
  });
  await author.db.sync.syncNow();
  // A transport whose first sync repeats every task, changed, right after it
  // (the device inserts a reset's rows plainly into its emptied tables).
  const doubled = pullsThrough((page) =>
    page.reset ? { ...page, changes: page.changes.flatMap((c) => (c.op === 'upsert' && c.table === 'tasks' ? [c, { ...c, row: { ...c.row, title: 'again' } }] : [c])) } : page,
  );
  const reader = world.device('una-new');
  const db = await reader.signIn('una', { transport: doubled });
  await db.sync.syncNow();
  expect(await db.rows('tasks')).toEqual([expect.objectContaining({ id: 'o2-t1', title: 'again' })]);
  expect(await db.foreignKeyCheck()).toEqual([]);
});

it('applies deletes that arrive parents first child-first on the device: nothing left behind, keys on (O3)', async () => {
  await pushTree('oda', 'o3');
  // A transport that hands the device every deletion parents first: P, then T (root before child), then K.
  const sent: string[][] = [];
  const rank = (c: { table: string; id?: string }): string => `${['projects', 'tasks', 'comments'].indexOf(c.table)}:${c.id === 'o3-t2' ? 1 : 0}`;
  const parentsFirst = pullsThrough((page) => {
    const deletes = page.changes.filter((c) => c.op === 'delete');
    sent.push(deletes.map((c) => `${c.table}:${c.id}`));
    return { ...page, changes: [...page.changes.filter((c) => c.op !== 'delete'), ...deletes.sort((a, b) => rank(a).localeCompare(rank(b)))] };
  });
  const db = await world.device('oda-second').signIn('oda', { transport: parentsFirst });
  await db.sync.syncNow();
  expect((await db.rows('comments')).map((c) => c.id)).toEqual(['o3-k']);

  // The server deletes the project, and its keys take the tasks and the comment with it.
  await world.sql.query(`DELETE FROM projects WHERE id = 'o3'`);
  await db.sync.syncNow();
  // The server sent the deletions children first (by table); the device got them turned around.
  expect(sent.at(-1)?.map((d) => d.split(':')[0])).toEqual(['comments', 'tasks', 'tasks', 'projects']);
  expect(sent.at(-1)?.toSorted()).toEqual(['comments:o3-k', 'projects:o3', 'tasks:o3-t1', 'tasks:o3-t2']);
  for (const table of ['projects', 'tasks', 'comments'] as const) expect(await db.rows(table)).toEqual([]);
  expect(await db.foreignKeyCheck()).toEqual([]);
  expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
});
