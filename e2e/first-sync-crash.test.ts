import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorld, tokenFor } from './support/world.js';
import type { World } from './support/world.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');

let world: World<E2eSchema>;
const counts = { projects: 500, tasks: 10_000, comments: 39_500 };

beforeAll(async () => {
  world = await createWorld(e2eSchema);
  // 50,000 rows over four key levels, written straight into Postgres.
  await world.sql.query(`INSERT INTO users (id, name) VALUES ('olga', 'Olga')`);
  await world.sql.query(`INSERT INTO projects (id, owner_id, title) SELECT 'p' || i, 'olga', 'project ' || i FROM generate_series(1, ${counts.projects}) i`);
  await world.sql.query(`INSERT INTO tasks (id, project_id, title) SELECT 't' || i, 'p' || (1 + i % ${counts.projects}), 'task ' || i FROM generate_series(1, ${counts.tasks}) i`);
  await world.sql.query(`UPDATE tasks SET parent_task_id = 't' || (substr(id, 2)::int - 1) WHERE substr(id, 2)::int % 10 <> 1`); // chains of subtasks
  await world.sql.query(`INSERT INTO comments (id, task_id, author_id, body) SELECT 'k' || i, 't' || (1 + i % ${counts.tasks}), 'olga', 'comment ' || i FROM generate_series(1, ${counts.comments}) i`);
}, 120_000);
afterAll(() => world.close());

function crashDuring(directory: string, pattern: string, nth: number): Promise<{ signal: NodeJS.Signals | null; stdout: string }> {
  return tokenFor('olga').then(
    (token) =>
      new Promise((done, fail) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dovetail/source', join(here, 'support', 'sync-then-crash.ts'), directory, world.server.url, token, pattern, String(nth)], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', fail);
        child.on('exit', (_code, signal) => (stderr && !signal ? fail(new Error(stderr)) : done({ signal, stdout })));
      }),
  );
}

describe('large first sync, killed and restarted (O4, O1, G10)', () => {
  it.each([
    ['in the middle of applying the rows', 'INSERT INTO "comments"', 20_000],
    ['between applying the rows and writing the cursor', 'meta:cursor', 1],
  ])('killed %s: keys stay on, nothing is duplicated, the next sync completes', async (_when, pattern, nth) => {
    const device = world.device(`olga-${nth}`);
    const run = await crashDuring(device.directory, pattern, nth);
    expect(run.signal).toBe('SIGKILL');
    expect(run.stdout).toContain('crashing before statement');
    expect(run.stdout).not.toContain('sync finished');

    const db = await device.signIn('olga');
    expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    expect(await db.foreignKeyCheck()).toEqual([]);
    expect(await db.rows('comments')).toEqual([]); // the half-applied pull was rolled back with its cursor
    await db.sync.syncNow();
    const n = async (t: string): Promise<number> => ((await db.query<{ n: number }>(`SELECT count(*) AS n FROM "${t}"`))[0]?.n ?? -1);
    expect([await n('projects'), await n('tasks'), await n('comments')]).toEqual([counts.projects, counts.tasks, counts.comments]);
    expect(await db.foreignKeyCheck()).toEqual([]);
    await device.signOut(true);
  }, 120_000);
});
