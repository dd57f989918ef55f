import Sqlite from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseFileName, DovetailError, ForeignKeyViolation } from '@dovetail/client';
import type { SqliteDriver } from '@dovetail/client';
import { nodeDriver, scenarioClient, tempDir } from './fixtures.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

async function boundAnn() {
  const client = scenarioClient(nodeDriver({ directory: t.dir }));
  const db = await client.bind({ userId: 'ann' });
  return { client, db };
}

async function violation(p: Promise<unknown>): Promise<ForeignKeyViolation> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ForeignKeyViolation);
  return error as ForeignKeyViolation;
}

describe('keys on (G1, Q1)', () => {
  it('runs every connection with foreign_keys on, verified by SQLite itself', async () => {
    const { client, db } = await boundAnn();
    expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    await client.signOut();
  });

  it('refuses to start when the pragma is silently ignored inside a transaction', async () => {
    // A driver that hands out connections already inside a transaction with
    // keys off: PRAGMA foreign_keys=ON "succeeds" but does nothing.
    const real = nodeDriver({ directory: t.dir });
    const leaky: SqliteDriver = {
      ...real,
      async open(file) {
        const conn = await real.open(file);
        await conn.exec('PRAGMA foreign_keys = OFF; BEGIN');
        return conn;
      },
    };
    const client = scenarioClient(leaky);
    const error = await client.bind({ userId: 'ann' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DovetailError);
    expect((error as DovetailError).code).toBe('foreign_keys_off');
    expect((error as Error).message).toMatch(/reads back 0/);
    expect(client.state).toBe('signed_out');
  });

  it('declares every key in the device file, none emulated', async () => {
    const { client } = await boundAnn();
    await client.signOut();
    const raw = new Sqlite(join(t.dir, databaseFileName('ann')), { readonly: true });
    const keys = raw.prepare("SELECT m.name AS t, k.* FROM sqlite_schema m, pragma_foreign_key_list(m.name) k WHERE m.type = 'table' ORDER BY t, k.\"from\"").all() as {
      t: string;
      from: string;
      table: string;
      on_delete: string;
    }[];
    raw.close();
    expect(keys.map((k) => `${k.t}.${k.from}->${k.table} ${k.on_delete}`)).toEqual([
      'comments.author_id->users CASCADE',
      'comments.task_id->tasks CASCADE',
      'projects.owner_id->users NO ACTION',
      'tasks.parent_task_id->tasks SET NULL',
      'tasks.project_id->projects CASCADE',
    ]);
  });
});

describe('errors that name the key (G2, Q4)', () => {
  it('names table, column, value and referenced table of a missing parent', async () => {
    const { client, db } = await boundAnn();
    const v = await violation(db.mutate('createTask', (m) => m.insert('tasks', { id: 't1', project_id: 'p_42', title: 'x' })));
    expect(v.code).toBe('foreign_key_violation');
    expect(v).toMatchObject({ table: 'tasks', column: 'project_id', value: 'p_42', referencedTable: 'projects', referencedColumn: 'id' });
    expect(v.message).toContain("tasks.project_id = 'p_42' has no projects.id");
    expect(v.message).not.toMatch(/FOREIGN KEY constraint failed$/);
    await client.signOut();
  });

  it('lists every broken key of a deferred failure, found before rollback', async () => {
    const { client, db } = await boundAnn();
    const v = await violation(
      db.mutate('many', (m) => {
        m.insert('projects', { id: 'p1', owner_id: 'ghost', title: 'x' });
        m.insert('tasks', { id: 't1', project_id: 'p1', parent_task_id: 'nope', title: 'x' });
        m.insert('comments', { id: 'c1', task_id: 'missing', author_id: 'ann', body: 'x' });
      }),
    );
    const described = v.violations.map((x) => `${x.table}.${x.column}=${String(x.value)}->${x.referencedTable}`).sort();
    expect(described).toEqual(['comments.task_id=missing->tasks', 'projects.owner_id=ghost->users', 'tasks.parent_task_id=nope->tasks']);
    expect(v.violations.find((x) => x.table === 'tasks')?.rowId).toBe('t1');
    await client.signOut();
  });

  it('says when the write itself deleted a parent that children still use (restrict)', async () => {
    const { client, db } = await boundAnn();
    await db.mutate('p', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'x' }));
    const v = await violation(db.mutate('deleteMe', (m) => m.delete('users', 'ann')));
    expect(v.violations[0]).toMatchObject({ table: 'projects', column: 'owner_id', value: 'ann', referencedTable: 'users', kind: 'parent_deleted' });
    expect(v.message).toMatch(/deletes users 'ann' while projects 'p1' still points at it/);
    expect(await db.get('users', 'ann')).toBeDefined();
    await client.signOut();
  });

  it('writes nothing, not even the outbox entry, when a key breaks', async () => {
    const { client, db } = await boundAnn();
    await violation(
      db.mutate('half', (m) => {
        m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'fine' });
        m.insert('tasks', { id: 't1', project_id: 'nope', title: 'broken' });
      }),
    );
    expect(await db.rows('projects')).toEqual([]);
    expect(await db.outbox()).toEqual([]);
    await client.signOut();
  });

  it('accepts a child before its parent inside one mutation (keys checked at commit)', async () => {
    const { client, db } = await boundAnn();
    await db.mutate('childFirst', (m) => {
      m.insert('comments', { id: 'c1', task_id: 't1', author_id: 'ann', body: 'hi' });
      m.insert('tasks', { id: 't1', project_id: 'p1', title: 'x' });
      m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'x' });
    });
    expect(await db.foreignKeyCheck()).toEqual([]);
    await client.signOut();
  });

  it('runs cascades and set-null like the declared policy', async () => {
    const { client, db } = await boundAnn();
    await db.mutate('tree', (m) => {
      m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'x' });
      m.insert('tasks', { id: 'root', project_id: 'p1', title: 'root' });
      m.insert('tasks', { id: 'sub', project_id: 'p1', parent_task_id: 'root', title: 'sub' });
      m.insert('comments', { id: 'c1', task_id: 'root', author_id: 'ann', body: 'x' });
    });
    await db.mutate('dropRoot', (m) => m.delete('tasks', 'root'));
    expect(await db.get('tasks', 'sub')).toMatchObject({ parent_task_id: null });
    expect(await db.rows('comments')).toEqual([]);
    await db.mutate('dropProject', (m) => m.delete('projects', 'p1'));
    expect(await db.rows('tasks')).toEqual([]);
    expect(await db.foreignKeyCheck()).toEqual([]);
    await client.signOut();
  });
});

describe('a failed write leaves the connection usable (Q5)', () => {
  it('rolls back a failed batch, keeps working, and closes', async () => {
    const { client, db } = await boundAnn();
    await db.mutate('p', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'x' }));
    const error = await db
      .mutate('batch', (m) => {
        for (let i = 0; i < 500; i++) m.insert('tasks', { id: i === 300 ? 't0' : `t${i}`, project_id: 'p1', title: `${i}` });
      })
      .catch((e: unknown) => e);
    expect((error as DovetailError).code).toBe('duplicate_row');
    expect(await db.rows('tasks')).toEqual([]);
    await violation(db.mutate('fk', (m) => m.insert('tasks', { id: 'x', project_id: 'nope', title: 'x' })));
    await db.mutate('after', (m) => m.insert('tasks', { id: 'ok', project_id: 'p1', title: 'fine' }));
    expect((await db.rows('tasks')).map((r) => r.id)).toEqual(['ok']);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await client.signOut();
    expect(client.state).toBe('signed_out');
  });
});
