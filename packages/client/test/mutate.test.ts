import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DovetailError } from '@dovetail/client';
import type { Database, Mutation } from '@dovetail/client';
import type { ScenarioSchema } from './fixtures.js';
import { nodeDriver, scenarioClient, tempDir } from './fixtures.js';

let t: ReturnType<typeof tempDir>;
let db: Database<ScenarioSchema>;
let close: () => Promise<void>;
beforeEach(async () => {
  t = tempDir();
  const client = scenarioClient(nodeDriver({ directory: t.dir }));
  db = await client.bind({ userId: 'ann' });
  close = () => client.signOut();
  await db.mutate('seed', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'P' }));
});
afterEach(async () => {
  await close();
  t.cleanup();
});

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof DovetailError ? e.code : String(e)),
  );

describe('mutate() (G3)', () => {
  it('commits rows and the outbox entry together, and tells listeners after commit', async () => {
    const seen: Mutation[] = [];
    db.events.on('mutation', (m) => seen.push(m));
    const m = await db.mutate('addTask', (b) => b.insert('tasks', { id: 't1', project_id: 'p1', title: 'a' }));
    expect(m.name).toBe('addTask');
    expect(seen).toEqual([m]);
    const outbox = await db.outbox();
    expect(outbox.map((e) => [e.id, e.name])).toEqual([
      [outbox[0]?.id, 'seed'],
      [m.id, 'addTask'],
    ]);
    expect(await db.get('tasks', 't1')).toEqual({ id: 't1', project_id: 'p1', parent_task_id: null, title: 'a', done: false, rank: 0 });
  });

  it('accepts plain op lists as well as the builder', async () => {
    await db.mutate('ops', [
      { op: 'insert', table: 'tasks', row: { id: 't1', project_id: 'p1', title: 'a' } },
      { op: 'update', table: 'tasks', id: 't1', set: { done: true } },
    ]);
    expect((await db.get('tasks', 't1'))?.done).toBe(true);
  });

  it('records canonical ops: known fields only, undefined dropped', async () => {
    await db.mutate('x', [{ op: 'insert', table: 'tasks', row: { id: 't1', project_id: 'p1', title: 'a', rank: undefined }, extra: 1 } as never]);
    expect((await db.outbox()).at(-1)?.ops).toEqual([{ op: 'insert', table: 'tasks', row: { id: 't1', project_id: 'p1', title: 'a' } }]);
  });

  it('upserts without deleting: children of an upserted parent survive', async () => {
    await db.mutate('t', (m) => m.insert('tasks', { id: 't1', project_id: 'p1', title: 'a' }));
    await db.mutate('c', (m) => m.insert('comments', { id: 'c1', task_id: 't1', author_id: 'ann', body: 'x' }));
    // INSERT OR REPLACE would delete t1 and cascade the comment away.
    await db.mutate('up', (m) => m.upsert('tasks', { id: 't1', project_id: 'p1', title: 'renamed' }));
    expect((await db.get('tasks', 't1'))?.title).toBe('renamed');
    expect(await db.get('comments', 'c1')).toBeDefined();
    await db.mutate('new', (m) => m.upsert('tasks', { id: 't2', project_id: 'p1', title: 'fresh' }));
    expect(await db.get('tasks', 't2')).toBeDefined();
  });

  it('round-trips every column type', async () => {
    await db.mutate('t', (m) => m.insert('tasks', { id: 't1', project_id: 'p1', title: 'ü ✓ \'quoted\'', done: true, rank: -42 }));
    expect(await db.get('tasks', 't1')).toMatchObject({ title: 'ü ✓ \'quoted\'', done: true, rank: -42 });
  });

  it('checks every row of a bulk insert, also those shaped like the one before', async () => {
    const rows = Array.from({ length: 50 }, (_, k) => ({ id: `t${k}`, project_id: 'p1', title: `task ${k}`, rank: k }));
    await db.mutate('bulk', (m) => rows.forEach((r) => m.insert('tasks', r)));
    expect(await db.rows('tasks')).toHaveLength(50);
    const attempts: [string, Promise<unknown>][] = [
      ['invalid_value', db.mutate('x', (m) => [...rows.map((r) => ({ ...r, id: `n${r.id}` })), { id: 'bad', project_id: 'p1', title: 7 as never, rank: 1 }].forEach((r) => m.insert('tasks', r)))],
      ['unknown_column', db.mutate('x', [{ op: 'insert', table: 'tasks', row: { id: 'a', project_id: 'p1', title: 'x', rank: 1, colour: 'red' } } as never])],
      ['duplicate_row', db.mutate('x', (m) => m.insert('tasks', { id: 't3', project_id: 'p1', title: 'again', rank: 0 }))],
    ];
    for (const [expected, attempt] of attempts) expect(await codeOf(attempt)).toBe(expected);
    expect(await db.rows('tasks')).toHaveLength(50);
    // Packed in the outbox, read back op by op.
    const entry = (await db.outbox()).find((e) => e.name === 'bulk');
    expect(entry?.ops).toEqual(rows.map((row) => ({ op: 'insert', table: 'tasks', row })));
  });

  it('rejects bad input with a code, and writes nothing', async () => {
    const before = await db.outboxDepth();
    const cases: [string, Promise<unknown>][] = [
      ['unknown_table', db.mutate('x', [{ op: 'insert', table: 'nope', row: { id: 'a' } } as never])],
      ['unknown_column', db.mutate('x', [{ op: 'insert', table: 'tasks', row: { id: 'a', project_id: 'p1', title: 'x', colour: 'red' } } as never])],
      ['invalid_value', db.mutate('x', (m) => m.insert('tasks', { id: 'a', project_id: 'p1', title: 42 as never }))],
      ['invalid_value', db.mutate('x', (m) => m.insert('tasks', { id: 'a', project_id: 'p1', title: 'x', rank: 1.5 }))],
      ['invalid_value', db.mutate('x', (m) => m.insert('tasks', { id: 'a', project_id: 'p1', title: 'x', done: 'yes' as never }))],
      ['invalid_value', db.mutate('x', (m) => m.insert('tasks', { id: '', project_id: 'p1', title: 'x' }))],
      ['invalid_value', db.mutate('x', (m) => m.update('tasks', 'a', { title: null as never }))],
      ['invalid_value', db.mutate('x', [{ op: 'drop', table: 'tasks' } as never])],
      ['invalid_value', db.mutate('', (m) => m.delete('projects', 'p1'))],
      ['missing_column', db.mutate('x', (m) => m.insert('tasks', { id: 'a', project_id: 'p1' } as never))],
      ['primary_key_immutable', db.mutate('x', (m) => m.update('projects', 'p1', { id: 'p2' }))],
      ['row_not_found', db.mutate('x', (m) => m.update('projects', 'nope', { title: 'x' }))],
      ['row_not_found', db.mutate('x', (m) => m.delete('projects', 'nope'))],
      ['duplicate_row', db.mutate('x', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'again' }))],
      ['empty_mutation', db.mutate('x', () => undefined)],
      // An async builder: the engine records ops synchronously and refuses it.
      ['invalid_value', db.mutate('x', () => Promise.resolve() as unknown as undefined)],
    ];
    for (const [expected, attempt] of cases) expect(await codeOf(attempt)).toBe(expected);
    expect(await db.outboxDepth()).toBe(before);
    expect(await db.rows('tasks')).toEqual([]);
    expect((await db.get('projects', 'p1'))?.title).toBe('P');
  });

  it('explains errors in words, with what to do', async () => {
    const e = await db.mutate('x', (m) => m.update('projects', 'nope', { title: 'x' })).then(() => undefined, (x: unknown) => x as DovetailError);
    if (!e) throw new Error('expected a failure');
    expect(e.message).toMatch(/update of projects 'nope': no such row on this device/);
    expect(e.message).toMatch(/upsert/);
  });
});
