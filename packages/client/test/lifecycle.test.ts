import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseFileName, DovetailError } from '@dovetail/client';
import type { LifecycleState } from '@dovetail/client';
import { nodeDriver, scenarioClient, tempDir } from './fixtures.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => t.cleanup());

const code = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof DovetailError ? e.code : `not a DovetailError: ${String(e)}`),
  );

describe('lifecycle (G9)', () => {
  it('walks boot, schema and bind in order and back on sign-out', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    const seen: LifecycleState[] = [];
    client.events.on('state', (s) => seen.push(s));
    await client.bind({ userId: 'ann' });
    await client.signOut();
    expect(seen).toEqual(['booting', 'migrating', 'binding', 'bound', 'signing_out', 'signed_out']);
  });

  it('refuses to use the database before bind and after sign-out', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    expect(() => client.db).toThrowError(/not available.*signed_out/);
    expect(readdirSync(t.dir)).toEqual([]); // nothing was opened implicitly
    const db = await client.bind({ userId: 'ann' });
    await client.signOut();
    expect(() => client.db).toThrow(DovetailError);
    expect(await code(db.rows('users'))).toBe('database_closed');
    expect(await code(db.mutate('late', (m) => m.insert('projects', { id: 'p', owner_id: 'ann', title: 'x' })))).toBe('database_closed');
  });

  it('refuses a second bind while bound, and a sign-out while binding', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    const binding = client.bind({ userId: 'ann' });
    expect(await code(client.signOut())).toBe('lifecycle_busy');
    await binding;
    expect(await code(client.bind({ userId: 'bob' }))).toBe('lifecycle_busy');
    await client.signOut();
  });

  it('gives every user their own file, named safely whatever the id', async () => {
    const ids = ['ann', 'Ann', '../../etc/passwd', 'a/b\\c', 'ü名前', 'x'.repeat(1000), 'CON', ' '];
    const names = ids.map(databaseFileName);
    expect(new Set(names).size).toBe(ids.length);
    for (const n of names) {
      expect(n).toMatch(/^dovetail-[a-z0-9_-]*-[0-9a-f]{24}\.db$/);
      expect(n.length).toBeLessThan(100);
    }
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    for (const userId of ids.slice(0, 4)) {
      await client.bind({ userId });
      await client.signOut();
    }
    expect(readdirSync(t.dir).filter((f) => f.endsWith('.db')).sort()).toEqual(names.slice(0, 4).sort());
  });

  it('refuses to open a file stamped for another user', async () => {
    const driver = nodeDriver({ directory: t.dir });
    const client = scenarioClient(driver);
    await client.bind({ userId: 'ann' });
    await client.signOut();
    // Someone copies Ann's file to where Bob's would be.
    copyFileSync(join(t.dir, databaseFileName('ann')), join(t.dir, databaseFileName('bob')));
    expect(await code(client.bind({ userId: 'bob' }))).toBe('wrong_owner');
    expect(client.state).toBe('signed_out');
    await client.bind({ userId: 'ann' }); // the client is usable again
    await client.signOut();
  });

  it('rejects empty or non-string user ids', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    expect(await code(client.bind({ userId: '' }))).toBe('invalid_user_id');
    expect(await code(client.bind({ userId: 42 as unknown as string }))).toBe('invalid_user_id');
    expect(client.state).toBe('signed_out');
  });

  it('wipes the file on sign-out when asked, and only then', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    await client.bind({ userId: 'ann' });
    await client.signOut();
    expect(existsSync(join(t.dir, databaseFileName('ann')))).toBe(true);
    await client.bind({ userId: 'ann' });
    await client.signOut({ wipe: true });
    expect(readdirSync(t.dir).filter((f) => f.startsWith(databaseFileName('ann')))).toEqual([]);
  });

  it('closes after queued work finishes', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    const db = await client.bind({ userId: 'ann' });
    const writes = Array.from({ length: 20 }, (_, i) => db.mutate('p', (m) => m.insert('projects', { id: `p${i}`, owner_id: 'ann', title: `${i}` })));
    const closing = client.signOut();
    await Promise.all(writes);
    await closing;
    const again = await client.bind({ userId: 'ann' });
    expect(await again.rows('projects')).toHaveLength(20);
    await client.signOut();
  });
});

describe('identity first (G14, S2)', () => {
  it('creates the user row on bind, so a first offline post commits', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    const db = await client.bind({ userId: 'ann', identity: { name: 'Ann' } });
    expect(await db.get('users', 'ann')).toEqual({ id: 'ann', name: 'Ann' });
    await db.mutate('createProject', (m) => m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'first' }));
    const [entry] = await db.outbox();
    expect(entry?.ops).toEqual([{ op: 'insert', table: 'projects', row: { id: 'p1', owner_id: 'ann', title: 'first' } }]);
    await client.signOut();
  });

  it('keeps an existing identity row as it is', async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    let db = await client.bind({ userId: 'ann', identity: { name: 'Ann' } });
    await db.mutate('rename', (m) => m.update('users', 'ann', { name: 'Annie' }));
    await client.signOut();
    db = await client.bind({ userId: 'ann', identity: { name: 'Ann' } });
    expect((await db.get('users', 'ann'))?.name).toBe('Annie');
    await client.signOut();
  });
});

describe('sign-out, sign-in as someone else (I1, local half)', () => {
  it("keeps A's pending mutations in A's file, out of B's sight", async () => {
    const client = scenarioClient(nodeDriver({ directory: t.dir }));
    let db = await client.bind({ userId: 'ann' });
    await db.mutate('a1', (m) => m.insert('projects', { id: 'pa', owner_id: 'ann', title: "Ann's" }));
    await client.signOut();

    db = await client.bind({ userId: 'bob' });
    expect(await db.rows('projects')).toEqual([]);
    expect(await db.outbox()).toEqual([]);
    expect((await db.rows('users')).map((u) => u.id)).toEqual(['bob']);
    await db.mutate('b1', (m) => m.insert('projects', { id: 'pb', owner_id: 'bob', title: "Bob's" }));
    await client.signOut();

    db = await client.bind({ userId: 'ann' });
    expect((await db.outbox()).map((e) => e.name)).toEqual(['a1']);
    expect((await db.rows('projects')).map((p) => p.id)).toEqual(['pa']);
    await client.signOut();
  });
});
