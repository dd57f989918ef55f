import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '@dovetail/client';
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

/** Resolves when `cond` holds for the latest delivered value. */
function collector<T>() {
  const values: T[] = [];
  const waiters: { cond: (v: T[]) => boolean; resolve: () => void }[] = [];
  return {
    values,
    push(v: T) {
      values.push(v);
      for (const w of [...waiters]) if (w.cond(values)) w.resolve();
    },
    until(cond: (v: T[]) => boolean): Promise<void> {
      if (cond(values)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ cond, resolve }));
    },
  };
}

describe('live queries', () => {
  it('delivers now and after each commit that changes a table the query reads', async () => {
    const c = collector<{ title: string }[]>();
    const stop = db.watch<{ title: string }>('SELECT t.title FROM tasks t JOIN projects p ON p.id = t.project_id ORDER BY t.title', [], { onData: (rows) => c.push(rows) });
    await c.until((v) => v.length === 1);
    expect(c.values[0]).toEqual([]);
    await db.mutate('t', (m) => m.insert('tasks', { id: 't1', project_id: 'p1', title: 'a' }));
    await c.until((v) => v.length === 2);
    expect(c.values[1]).toEqual([{ title: 'a' }]);
    // A change to projects (read through the join) re-runs too; same rows are not delivered again.
    await db.mutate('rename', (m) => m.update('projects', 'p1', { title: 'Q' }));
    await db.mutate('t2', (m) => m.insert('tasks', { id: 't2', project_id: 'p1', title: 'b' }));
    await c.until((v) => v.length === 3);
    expect(c.values).toHaveLength(3);
    expect(c.values[2]).toEqual([{ title: 'a' }, { title: 'b' }]);
    stop();
    await db.mutate('t3', (m) => m.insert('tasks', { id: 't3', project_id: 'p1', title: 'c' }));
    await db.query('SELECT 1');
    expect(c.values).toHaveLength(3);
  });

  it('does not re-run for tables it does not read, and never shows a rolled-back write', async () => {
    let runs = 0;
    const c = collector<unknown[]>();
    db.watch('SELECT id FROM comments', [], {
      onData: (rows) => {
        runs++;
        c.push(rows);
      },
    });
    await c.until((v) => v.length === 1);
    await db.mutate('t', (m) => m.insert('tasks', { id: 't1', project_id: 'p1', title: 'a' }));
    await db.mutate('bad', (m) => m.insert('comments', { id: 'c1', task_id: 'missing', author_id: 'ann', body: 'x' })).catch(() => undefined);
    await db.query('SELECT 1');
    expect(runs).toBe(1);
    await db.mutate('ok', (m) => m.insert('comments', { id: 'c2', task_id: 't1', author_id: 'ann', body: 'x' }));
    await c.until((v) => v.length === 2);
    expect(c.values[1]).toEqual([{ id: 'c2' }]);
  });

  it('re-runs children when a cascade removes them', async () => {
    const c = collector<{ id: string; title: string }[]>();
    await db.mutate('t', (m) => m.insert('tasks', { id: 't1', project_id: 'p1', title: 'a' }));
    db.watchRows('tasks', { project_id: 'p1' }, (rows) => c.push(rows));
    await c.until((v) => v.at(-1)?.length === 1);
    await db.mutate('drop', (m) => m.delete('projects', 'p1'));
    await c.until((v) => v.at(-1)?.length === 0);
  });
});
