import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defineSchema, integer, quoteIdent, table, text } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import { applyMigration, createAuthenticator, migrationStatus, MigrationError, planMigration, readCatalog, SyncServer } from '@dovetail/server';
import type { Catalog, MigrationEvent, MigrationStep, Sql } from '@dovetail/server';
import pg from 'pg';
import { openServerSql } from '../../../e2e/support/database.js';

/**
 * Server migrations against a real database: PGlite by default, Postgres
 * when DATABASE_URL is set. One database for the file; every test starts
 * from an empty schema (the connection's own, dropped and created again).
 */
let sql: Sql;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ sql, close } = await openServerSql('migrate'));
});
afterAll(() => close());
beforeEach(async () => {
  const rows = await sql.query<{ s: string }>('SELECT current_schema() AS s');
  const name = quoteIdent(rows[0]?.s ?? 'public');
  await sql.query(`DROP SCHEMA ${name} CASCADE`);
  await sql.query(`CREATE SCHEMA ${name}`);
});

const users = table({ columns: { id: text().primaryKey(), name: text().default('') }, owner: 'id', visibility: 'public' });
const posts = table({
  columns: { id: text().primaryKey(), author_id: text().references('users', { onDelete: 'cascade' }), body: text() },
  owner: 'author_id',
  visibility: 'public',
});
const v1 = defineSchema({ version: 1, identity: 'users', tables: { users, posts } });

/** v2: a new table, and a nullable self-reference on posts (a column and a key the database lacks: S5). */
const v2 = defineSchema({
  version: 2,
  identity: 'users',
  tables: {
    users,
    posts: table({
      columns: {
        id: text().primaryKey(),
        author_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
        reply_to: text().nullable().references('posts', { onDelete: 'set null' }),
      },
      owner: 'author_id',
      visibility: 'public',
    }),
    likes: table({
      columns: { id: text().primaryKey(), post_id: text().references('posts', { onDelete: 'cascade' }), user_id: text().references('users', { onDelete: 'cascade' }) },
      owner: 'user_id',
      visibility: 'public',
    }),
  },
});

const ids = (steps: readonly MigrationStep[]): string[] => steps.map((s) => s.id);
const plan = async (schema: Schema): Promise<ReturnType<typeof planMigration>> => planMigration(schema, await readCatalog(sql));
const key = (catalog: Catalog, tableName: string, name: string) => catalog.tables.get(tableName)?.foreignKeys.find((k) => k.name === name);

/** A catalog without what drifts on its own (row estimates move with autovacuum). */
function shape(catalog: Catalog): unknown {
  return [...catalog.tables.values()].map((t) => ({ ...t, columns: [...t.columns.values()], rowEstimate: t.rowEstimate > 0 }));
}

async function seedV1(): Promise<void> {
  const outcome = await applyMigration(sql, v1);
  expect(outcome.failed).toBeUndefined();
  await sql.query(`INSERT INTO users (id, name) SELECT 'u' || i, 'user ' || i FROM generate_series(1, 50) AS i`);
  await sql.query(`INSERT INTO posts (id, author_id, body) SELECT 'p' || i, 'u' || (i % 50 + 1), 'post ' || i FROM generate_series(1, 500) AS i`);
}

const dump = (tableName: string): Promise<Record<string, unknown>[]> => sql.query(`SELECT * FROM ${quoteIdent(tableName)} ORDER BY id`);

describe('an empty database', () => {
  it('gets every table, key, index and trigger; afterwards the plan is empty and status says in sync', async () => {
    const before = await plan(v1);
    expect(ids(before.steps)).toEqual(['engine', 'create_table:users', 'create_table:posts']);
    expect(before.refused).toEqual([]);

    const events: MigrationEvent['type'][] = [];
    const outcome = await applyMigration(sql, v1, { onStep: (e) => events.push(e.type) });
    expect(outcome.failed).toBeUndefined();
    expect(ids(outcome.applied)).toEqual(ids(before.steps));
    expect(outcome.pending).toEqual([]);
    expect(events).toEqual(['step_started', 'step_applied', 'step_started', 'step_applied', 'step_started', 'step_applied']);

    const catalog = await readCatalog(sql);
    expect(planMigration(v1, catalog)).toEqual({ schemaVersion: 1, steps: [], refused: [] });
    expect(key(catalog, 'posts', 'posts_author_id_fkey')).toMatchObject({ refTable: 'users', onDelete: 'cascade', deferrable: true, initiallyDeferred: true, validated: true, enabled: true });
    expect(catalog.tables.get('posts')?.triggers).toEqual([{ name: '_dovetail_capture', enabled: true }]);

    const status = await migrationStatus(sql, v1);
    expect(status).toMatchObject({ inSync: true, recordedVersion: 1, schemaVersion: 1, pending: [], refused: [] });
    expect(status.history.map((h) => h.step)).toEqual(['engine', 'create_table:users', 'create_table:posts', 'schema_version:1']);

    // Running again does nothing.
    expect((await applyMigration(sql, v1)).applied).toEqual([]);
  });

  it('ends up exactly like a database prepared by the sync server itself', async () => {
    await applyMigration(sql, v2);
    const migrated = await readCatalog(sql);
    migrated.tables.delete('_dovetail_migrations');

    const rows = await sql.query<{ s: string }>('SELECT current_schema() AS s');
    const name = quoteIdent(rows[0]?.s ?? 'public');
    await sql.query(`DROP SCHEMA ${name} CASCADE`);
    await sql.query(`CREATE SCHEMA ${name}`);
    await new SyncServer({ schema: v2, sql, authenticate: createAuthenticator({ secret: 'a-secret-that-is-long-enough-for-hs256' }) }).setup();
    const prepared = await readCatalog(sql);

    expect(shape(migrated)).toEqual(shape(prepared));
    expect(planMigration(v2, prepared).steps).toEqual([]);
  });

  it('is migrated once when two instances apply at the same time', async () => {
    const [a, b] = await Promise.all([applyMigration(sql, v2), applyMigration(sql, v2)]);
    expect(a.failed ?? b.failed).toBeUndefined();
    const all = [...ids(a.applied), ...ids(b.applied)].sort();
    expect(all).toEqual(ids((planMigration(v2, { schema: 'x', tables: new Map(), functions: new Set() })).steps).sort());
    const history = (await migrationStatus(sql, v2)).history.filter((h) => h.kind !== 'schema_version').map((h) => h.step);
    expect(new Set(history).size).toBe(history.length);
  });
});

describe('an engine set up by an earlier version', () => {
  it("says that the engine step numbers the devices from the old ledger, and does it", async () => {
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    await sql.query(`INSERT INTO _dovetail_ledger (client_id, mutation_id, user_id, seq, digest, result) VALUES ('d1', 'm1', 'u1', 1, '', '{}'), ('d1', 'm2', 'u1', 2, '', '{}')`);
    // The layout of earlier versions: no clients table, the ledger numbered by its own index.
    await sql.query('DROP TABLE _dovetail_clients');
    await sql.query('CREATE UNIQUE INDEX _dovetail_ledger_order ON _dovetail_ledger (client_id, seq)');
    const before = await plan(v1);
    expect(ids(before.steps)).toEqual(['engine']);
    expect(before.steps[0]?.description).toMatch(/tables _dovetail_clients .*fill _dovetail_clients from the ledger's numbering, then drop the ledger's index _dovetail_ledger_order/);
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    expect(await sql.query('SELECT client_id, seq::int AS seq, last_mutation FROM _dovetail_clients')).toEqual([{ client_id: 'd1', seq: 2, last_mutation: 'm2' }]);
    expect((await plan(v1)).steps).toEqual([]);
  });

  it('adds the column of the change log that records the writing device, keeping its entries', async () => {
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    await sql.query(`INSERT INTO users (id, name) VALUES ('u1', 'one')`);
    await sql.query('ALTER TABLE _dovetail_changes DROP COLUMN client_id');
    const before = await plan(v1);
    expect(ids(before.steps)).toEqual(['engine']);
    expect(before.steps[0]?.description).toMatch(/columns _dovetail_changes\.client_id/);
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    expect(await sql.query("SELECT row_id, client_id FROM _dovetail_changes WHERE tbl = 'users'")).toEqual([{ row_id: 'u1', client_id: null }]);
    expect((await plan(v1)).steps).toEqual([]);
  });
  it('creates the function that checks batched pushes, which earlier versions did not have', async () => {
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    await sql.query('DROP FUNCTION _dovetail_expect(boolean)');
    const before = await plan(v1);
    expect(ids(before.steps)).toEqual(['engine']);
    expect(before.steps[0]?.description).toMatch(/functions _dovetail_expect/);
    expect((await applyMigration(sql, v1)).failed).toBeUndefined();
    expect(await sql.query('SELECT _dovetail_expect(true) AS ok')).toEqual([{ ok: true }]);
    expect((await plan(v1)).steps).toEqual([]);
  });
});

describe('a database with rows, moved to a new schema version', () => {
  it('adds a table, a nullable column and its key, keeping every row; the key ends validated and deferrable', async () => {
    await seedV1();
    const usersBefore = await dump('users');
    const postsBefore = await dump('posts');

    const outcome = await applyMigration(sql, v2);
    expect(outcome.failed).toBeUndefined();
    expect(ids(outcome.applied)).toEqual([
      'create_table:likes',
      'add_column:posts.reply_to',
      'add_foreign_key:posts.posts_reply_to_fkey',
      'create_index:posts.posts_reply_to_idx',
      'validate_foreign_key:posts.posts_reply_to_fkey',
    ]);

    expect(await dump('users')).toEqual(usersBefore);
    expect(await dump('posts')).toEqual(postsBefore.map((p) => ({ ...p, reply_to: null })));
    const catalog = await readCatalog(sql);
    for (const [t, k] of [['posts', 'posts_reply_to_fkey'], ['likes', 'likes_post_id_fkey'], ['likes', 'likes_user_id_fkey']] as const) {
      expect(key(catalog, t, k)).toMatchObject({ validated: true, deferrable: true, initiallyDeferred: true, enabled: true });
    }
    expect(key(catalog, 'posts', 'posts_reply_to_fkey')?.onDelete).toBe('set null');
    const status = await migrationStatus(sql, v2);
    expect(status).toMatchObject({ inSync: true, recordedVersion: 2 });
    expect(status.history.filter((h) => h.kind === 'schema_version').map((h) => h.schemaVersion)).toEqual([1, 2]);
  });

  it('S5: a key on a column the database lacks is planned after the column, and status shows the drift first', async () => {
    await seedV1();
    const status = await migrationStatus(sql, v2);
    expect(status.inSync).toBe(false);
    const order = ids(status.pending);
    expect(order.indexOf('add_column:posts.reply_to')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('add_column:posts.reply_to')).toBeLessThan(order.indexOf('add_foreign_key:posts.posts_reply_to_fkey'));
    expect(order.indexOf('add_foreign_key:posts.posts_reply_to_fkey')).toBeLessThan(order.indexOf('validate_foreign_key:posts.posts_reply_to_fkey'));
    expect(status.pending.find((s) => s.kind === 'add_foreign_key')?.sql).toEqual([
      'ALTER TABLE "posts" ADD CONSTRAINT "posts_reply_to_fkey" FOREIGN KEY ("reply_to") REFERENCES "posts" ("id") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED NOT VALID',
    ]);
  });

  it('stops at a VALIDATE that orphan rows fail; earlier steps stay, the failed one leaves nothing behind', async () => {
    await seedV1();
    await sql.query('ALTER TABLE posts ADD COLUMN reply_to text');
    await sql.query(`UPDATE posts SET reply_to = 'p-gone' WHERE id IN ('p3', 'p7')`);

    const first = await applyMigration(sql, v2);
    expect(ids(first.applied)).toEqual(['create_table:likes', 'add_foreign_key:posts.posts_reply_to_fkey', 'create_index:posts.posts_reply_to_idx']);
    expect(first.failed?.step.id).toBe('validate_foreign_key:posts.posts_reply_to_fkey');
    expect(first.failed?.error.code).toBe('23503');
    expect(first.failed?.hint).toContain('posts_reply_to_fkey');
    expect(first.failed?.hint).toContain('dovetail doctor');
    expect(first.failed?.hint).toContain('p-gone');
    expect(ids(first.pending)).toEqual(['validate_foreign_key:posts.posts_reply_to_fkey']);
    const status = await migrationStatus(sql, v2);
    expect(status.history.map((h) => h.step)).not.toContain('validate_foreign_key:posts.posts_reply_to_fkey');
    expect(status.recordedVersion).toBe(1);

    // The failed step is now the first: the catalog after it equals the one before it.
    const before = await readCatalog(sql);
    expect(key(before, 'posts', 'posts_reply_to_fkey')).toMatchObject({ validated: false, deferrable: true });
    const again = await applyMigration(sql, v2);
    expect(again.applied).toEqual([]);
    expect(again.failed?.step.id).toBe('validate_foreign_key:posts.posts_reply_to_fkey');
    expect(shape(await readCatalog(sql))).toEqual(shape(before));
    // The NOT VALID key already guards new writes.
    await expect(sql.query(`INSERT INTO posts (id, author_id, body, reply_to) VALUES ('px', 'u1', '', 'p-gone')`)).rejects.toMatchObject({ code: '23503' });

    await sql.query(`UPDATE posts SET reply_to = NULL WHERE reply_to = 'p-gone'`);
    const fixed = await applyMigration(sql, v2);
    expect(ids(fixed.applied)).toEqual(['validate_foreign_key:posts.posts_reply_to_fkey']);
    expect((await migrationStatus(sql, v2)).inSync).toBe(true);
  });
});

describe('changes migrate refuses', () => {
  it('refuses a retype, a dropped column, a column made NOT NULL and a moved key, and changes nothing', async () => {
    await seedV1();
    const v3 = defineSchema({
      version: 3,
      identity: 'users',
      tables: {
        users: table({ columns: { id: text().primaryKey() }, owner: 'id', visibility: 'public' }),
        posts: table({
          columns: { id: text().primaryKey(), author_id: text().references('users', { onDelete: 'cascade' }), body: integer(), reply_to: text().references('posts') },
          owner: 'author_id',
          visibility: 'public',
        }),
      },
    });
    await sql.query('ALTER TABLE posts ADD COLUMN reply_to text REFERENCES users (id)');
    const catalog = await readCatalog(sql);
    const { refused, steps } = planMigration(v3, catalog);
    expect(refused.map((r) => r.id).sort()).toEqual(['change_key_target:posts.posts_reply_to_fkey', 'drop_column:users.name', 'retype_column:posts.body', 'set_not_null:posts.reply_to']);
    for (const r of refused) expect(r.action.length).toBeGreaterThan(10);
    expect(steps.map((s) => s.kind)).not.toContain('add_column');

    const error = await applyMigration(sql, v3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({ code: 'migration_refused' });
    expect((error as MigrationError).message).toContain('posts.body is text in the database but integer (bigint)');
    expect((error as MigrationError).refused).toHaveLength(4);
    expect(shape(await readCatalog(sql))).toEqual(shape(catalog));
  });

  it('refuses a NOT NULL column without a default on a table with rows, naming the row count; plans it on an empty one', async () => {
    const v4 = defineSchema({
      version: 2,
      identity: 'users',
      tables: { users: table({ columns: { id: text().primaryKey(), name: text().default(''), handle: text() }, owner: 'id', visibility: 'public' }), posts },
    });
    await applyMigration(sql, v1);
    expect(ids((await plan(v4)).steps)).toEqual(['add_column:users.handle']);
    await sql.query(`INSERT INTO users (id) VALUES ('u1'), ('u2'), ('u3')`);
    await sql.query('ANALYZE users');
    const { refused } = await plan(v4);
    expect(refused).toMatchObject([{ id: 'not_null_on_rows:users.handle', kind: 'not_null_on_rows', table: 'users', column: 'handle' }]);
    expect(refused[0]?.reason).toContain('about 3');
  });

  it('refuses to migrate a database back to an older schema version', async () => {
    await applyMigration(sql, v2);
    await expect(applyMigration(sql, v1)).rejects.toMatchObject({ code: 'schema_downgrade' });
  });
});

describe('keys that exist but are not what sync needs', () => {
  it('makes a non-deferrable key deferrable and replaces a key whose delete policy changed, keeping rows', async () => {
    await sql.query(`CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL DEFAULT '')`);
    await sql.query(`CREATE TABLE posts (id text PRIMARY KEY, author_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE, body text NOT NULL)`);
    await sql.query(`CREATE TABLE likes (id text PRIMARY KEY, post_id text NOT NULL REFERENCES posts (id), user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE)`);
    await sql.query(`INSERT INTO users (id) VALUES ('u1')`);
    await sql.query(`INSERT INTO posts VALUES ('p1', 'u1', 'x')`);
    await sql.query(`INSERT INTO likes VALUES ('l1', 'p1', 'u1')`);

    const before = await plan(v2);
    expect(before.refused).toEqual([]);
    expect(ids(before.steps)).toEqual([
      'engine',
      'add_column:posts.reply_to',
      'make_deferrable:posts.posts_author_id_fkey',
      'add_foreign_key:posts.posts_reply_to_fkey',
      'replace_foreign_key:likes.likes_post_id_fkey',
      'make_deferrable:likes.likes_user_id_fkey',
      'create_index:posts.posts_author_id_idx',
      'create_index:posts.posts_reply_to_idx',
      'create_index:likes.likes_post_id_idx',
      'create_index:likes.likes_user_id_idx',
      'capture:users',
      'capture:posts',
      'capture:likes',
      'validate_foreign_key:posts.posts_reply_to_fkey',
      'validate_foreign_key:likes.likes_post_id_fkey',
    ]);
    const outcome = await applyMigration(sql, v2);
    expect(outcome.failed).toBeUndefined();
    const catalog = await readCatalog(sql);
    expect(key(catalog, 'posts', 'posts_author_id_fkey')).toMatchObject({ deferrable: true, initiallyDeferred: true, validated: true });
    expect(key(catalog, 'likes', 'likes_post_id_fkey')).toMatchObject({ onDelete: 'cascade', deferrable: true, validated: true });
    expect(await dump('likes')).toEqual([{ id: 'l1', post_id: 'p1', user_id: 'u1' }]);

    // Deferred for real: a child before its parent commits in one transaction.
    await sql.transaction(async (tx) => {
      await tx.query(`INSERT INTO posts (id, author_id, body) VALUES ('p2', 'u2', 'y')`);
      await tx.query(`INSERT INTO users (id) VALUES ('u2')`);
    });
    expect((await migrationStatus(sql, v2)).inSync).toBe(true);
  });
});

describe('columns that only need relaxing', () => {
  it('drops a NOT NULL the schema no longer asks for and adds a declared default', async () => {
    await sql.query(`CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL, bio text)`);
    await sql.query(`INSERT INTO users VALUES ('u1', 'Ann', NULL)`);
    const relaxed = defineSchema({
      version: 1,
      identity: 'users',
      tables: { users: table({ columns: { id: text().primaryKey(), name: text().nullable(), bio: text().nullable().default('') }, owner: 'id', visibility: 'public' }) },
    });
    const { steps } = planMigration(relaxed, await readCatalog(sql));
    expect(ids(steps)).toEqual(['engine', 'drop_not_null:users.name', 'set_default:users.bio', 'capture:users']);
    expect((await applyMigration(sql, relaxed)).failed).toBeUndefined();
    await sql.query(`INSERT INTO users (id) VALUES ('u2')`);
    expect(await dump('users')).toEqual([
      { id: 'u1', name: 'Ann', bio: null },
      { id: 'u2', name: null, bio: '' },
    ]);
    expect((await migrationStatus(sql, relaxed)).inSync).toBe(true);
  });
});

describe('unique columns', () => {
  const withHandle = defineSchema({
    version: 1,
    identity: 'users',
    tables: { users: table({ columns: { id: text().primaryKey(), handle: text().nullable().unique() }, owner: 'id', visibility: 'public' }) },
  });

  it('makes a column unique that the schema declares unique and the database does not; a partial unique index does not count', async () => {
    await sql.query(`CREATE TABLE users (id text PRIMARY KEY, handle text)`);
    await sql.query(`CREATE UNIQUE INDEX users_handle_some ON users (handle) WHERE handle <> ''`);
    await sql.query(`INSERT INTO users VALUES ('u1', 'ann'), ('u2', NULL), ('u3', NULL)`);
    const { steps } = planMigration(withHandle, await readCatalog(sql));
    expect(ids(steps)).toEqual(['engine', 'add_unique:users.handle', 'capture:users']);
    expect((await applyMigration(sql, withHandle)).failed).toBeUndefined();
    await expect(sql.query(`INSERT INTO users VALUES ('u4', 'ann')`)).rejects.toMatchObject({ code: '23505' });
    expect((await migrationStatus(sql, withHandle)).inSync).toBe(true);
    expect(await dump('users')).toHaveLength(3);
  });

  it('stops where existing rows share a value, naming the duplicates, and changes nothing', async () => {
    await sql.query(`CREATE TABLE users (id text PRIMARY KEY, handle text)`);
    await sql.query(`INSERT INTO users VALUES ('u1', 'ann'), ('u2', 'ann')`);
    const outcome = await applyMigration(sql, withHandle);
    expect(outcome.failed).toMatchObject({ step: { id: 'add_unique:users.handle' } });
    expect(outcome.failed?.hint).toMatch(/duplicate values.*Remove the duplicates/s);
    expect(outcome.failed?.hint).toContain('(handle)=(ann)');
    await sql.query(`INSERT INTO users VALUES ('u3', 'ann')`); // still no constraint
    await sql.query(`DELETE FROM users WHERE id IN ('u2', 'u3')`);
    expect((await applyMigration(sql, withHandle)).failed).toBeUndefined();
    expect((await migrationStatus(sql, withHandle)).inSync).toBe(true);
  });
});

describe('locks', () => {
  // PGlite has a single connection, so no other transaction can hold a lock.
  it.skipIf(!process.env['DATABASE_URL'])('gives up on a table another transaction holds, after the lock timeout, changing nothing', async () => {
    await seedV1();
    const rows = await sql.query<{ s: string }>('SELECT current_schema() AS s');
    const other = new pg.Client({ connectionString: process.env['DATABASE_URL'], options: `-c search_path=${rows[0]?.s ?? 'public'}` });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('LOCK TABLE posts IN ACCESS SHARE MODE');
      const outcome = await applyMigration(sql, v2, { lockTimeoutMs: 200 });
      expect(ids(outcome.applied)).toEqual(['create_table:likes']);
      expect(outcome.failed).toMatchObject({ step: { id: 'add_column:posts.reply_to' }, error: { code: '55P03' } });
      expect(outcome.failed?.hint).toContain('could not lock posts within 200 ms');
      await other.query('ROLLBACK');
      expect(ids((await applyMigration(sql, v2)).applied)).toEqual(ids(outcome.pending));
    } finally {
      await other.end();
    }
  });
});
