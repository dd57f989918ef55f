import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { openServerSql } from '../../../e2e/support/database.js';

let sql: Sql;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ sql, close } = await openServerSql('catalog'));
  await sql.query(`CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL DEFAULT '')`);
  await sql.query(`CREATE TABLE posts (id text PRIMARY KEY, author_id text NOT NULL, score double precision, meta jsonb, n bigint)`);
  await sql.query(`ALTER TABLE posts ADD CONSTRAINT posts_author_id_fkey FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE NOT VALID`);
  await sql.query(`CREATE TABLE likes (post_id text, user_id text, PRIMARY KEY (post_id, user_id))`);
  await sql.query(`ALTER TABLE likes ADD CONSTRAINT likes_post_fkey FOREIGN KEY (post_id) REFERENCES posts (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED`);
  await sql.query(`CREATE INDEX posts_author_id_idx ON posts (author_id)`);
  await sql.query(`ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name)`);
  await sql.query(`CREATE UNIQUE INDEX posts_score_some ON posts (score) WHERE score > 0`);
  await sql.query(`CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
  await sql.query(`CREATE TRIGGER posts_noop AFTER INSERT ON posts FOR EACH ROW EXECUTE FUNCTION noop()`);
  await sql.query(`ALTER TABLE posts DISABLE TRIGGER posts_noop`);
  await sql.query(`ALTER TABLE likes DISABLE TRIGGER ALL`);
  await sql.query(`INSERT INTO users (id, name) VALUES ('u1', 'one'), ('u2', 'two')`);
});
afterAll(() => close());

describe('readCatalog', () => {
  it('reads tables, columns, keys, indexes and triggers of the current schema', async () => {
    const catalog = await readCatalog(sql);
    expect([...catalog.tables.keys()]).toEqual(['likes', 'posts', 'users']);
    const posts = catalog.tables.get('posts');
    expect([...(posts?.columns.values() ?? [])]).toEqual([
      { name: 'id', type: 'text', nullable: false, hasDefault: false },
      { name: 'author_id', type: 'text', nullable: false, hasDefault: false },
      { name: 'score', type: 'double precision', nullable: true, hasDefault: false },
      { name: 'meta', type: 'jsonb', nullable: true, hasDefault: false },
      { name: 'n', type: 'bigint', nullable: true, hasDefault: false },
    ]);
    expect(catalog.tables.get('users')?.columns.get('name')?.hasDefault).toBe(true);
    expect(posts?.primaryKey).toEqual(['id']);
    expect(catalog.tables.get('likes')?.primaryKey).toEqual(['post_id', 'user_id']);
    expect(posts?.foreignKeys).toEqual([
      { name: 'posts_author_id_fkey', columns: ['author_id'], refTable: 'users', refColumns: ['id'], onDelete: 'cascade', deferrable: false, initiallyDeferred: false, validated: false, enabled: true },
    ]);
    expect(catalog.tables.get('likes')?.foreignKeys).toEqual([
      { name: 'likes_post_fkey', columns: ['post_id'], refTable: 'posts', refColumns: ['id'], onDelete: 'set null', deferrable: true, initiallyDeferred: true, validated: true, enabled: false },
    ]);
    // Unique over all rows: a primary key and a UNIQUE constraint are; a partial unique index is not.
    expect(posts?.indexes).toEqual([
      { name: 'posts_author_id_idx', columns: ['author_id'], unique: false },
      { name: 'posts_pkey', columns: ['id'], unique: true },
      { name: 'posts_score_some', columns: ['score'], unique: false },
    ]);
    expect(catalog.tables.get('likes')?.indexes).toEqual([{ name: 'likes_pkey', columns: ['post_id', 'user_id'], unique: true }]);
    expect(catalog.tables.get('users')?.indexes).toEqual([
      { name: 'users_name_key', columns: ['name'], unique: true },
      { name: 'users_pkey', columns: ['id'], unique: true },
    ]);
    expect(posts?.triggers).toEqual([{ name: 'posts_noop', enabled: false }]);
    expect(catalog.tables.get('likes')?.triggers).toEqual([]);
  });

  it('says whether a table holds rows, even before it was ever analyzed', async () => {
    const catalog = await readCatalog(sql);
    expect(catalog.tables.get('posts')?.rowEstimate).toBe(0);
    expect(catalog.tables.get('users')?.rowEstimate).toBeGreaterThanOrEqual(1);
    await sql.query('ANALYZE users');
    expect((await readCatalog(sql)).tables.get('users')?.rowEstimate).toBe(2);
  });

  it('sees only the current schema', async () => {
    const catalog = await readCatalog(sql);
    const rows = await sql.query<{ s: string }>('SELECT current_schema() AS s');
    expect(catalog.schema).toBe(rows[0]?.s);
    expect(catalog.tables.has('pg_class')).toBe(false);
  });
});
