import Sqlite from 'better-sqlite3';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { boolean, defineSchema, integer, json, real, SchemaError, table, text } from '@dovetail/schema';
import type { Insert, Row, TableDefinitions } from '@dovetail/schema';

const users = table({ columns: { id: text().primaryKey(), name: text() }, owner: 'id', visibility: 'public' });

function fails(tables: TableDefinitions, extra: { identity?: string; version?: number } = {}): SchemaError {
  try {
    defineSchema({ version: extra.version ?? 1, identity: (extra.identity ?? 'users') as 'users', tables: { users, ...tables } });
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaError);
    return e as SchemaError;
  }
  throw new Error('expected the schema to be refused');
}

describe('schema mistakes are caught at definition, naming table and column', () => {
  it('a key to an unknown table', () => {
    const e = fails({ posts: table({ columns: { id: text().primaryKey(), author_id: text().references('people') }, owner: 'author_id', visibility: 'public' }) });
    expect(e).toMatchObject({ code: 'schema_unknown_table', table: 'posts', column: 'author_id' });
    expect(e.message).toMatch(/posts\.author_id references table 'people'.*known tables: users, posts/);
  });

  it('a key to an unknown column', () => {
    const e = fails({ posts: table({ columns: { id: text().primaryKey(), author_id: text().references('users', { column: 'uid' }) }, owner: 'author_id', visibility: 'public' }) });
    expect(e).toMatchObject({ code: 'schema_unknown_column', table: 'posts', column: 'author_id' });
    expect(e.message).toContain('users.uid, which does not exist');
  });

  it('a key whose type differs from the referenced key', () => {
    const e = fails({
      counters: table({ columns: { id: text().primaryKey(), n: integer().unique() }, owner: { through: 'id' } as never, visibility: 'public' }),
      posts: table({ columns: { id: text().primaryKey(), author_id: integer().references('users') }, owner: 'id', visibility: 'public' }),
    });
    expect(e.code).toBe('schema_key_type_mismatch');
    expect(e.message).toContain('posts.author_id is integer but references users.id, which is text');
  });

  it('a missing owner', () => {
    const e = fails({ tags: table({ columns: { id: text().primaryKey() }, visibility: 'public' } as never) });
    expect(e).toMatchObject({ code: 'schema_missing_owner', table: 'tags' });
    expect(e.message).toMatch(/table 'tags' has no owner/);
  });

  it('an owner through a column that is not a key', () => {
    const e = fails({ tags: table({ columns: { id: text().primaryKey(), post_id: text() }, owner: { through: 'post_id' }, visibility: 'public' }) });
    expect(e).toMatchObject({ code: 'schema_bad_owner', table: 'tags', column: 'post_id' });
  });

  it('a visible table whose parent can never be visible', () => {
    const e = fails({
      audit: table({ columns: { id: text().primaryKey(), user_id: text().references('users') }, owner: 'user_id', visibility: 'none' }),
      notes: table({ columns: { id: text().primaryKey(), audit_id: text().references('audit'), by: text() }, owner: 'by', visibility: { through: 'audit_id' } }),
    });
    expect(e).toMatchObject({ code: 'schema_never_visible_parent', table: 'notes', column: 'audit_id' });
    expect(e.message).toMatch(/no one could ever see a notes row/);
  });

  it('a synced row pointing at a never-synced table', () => {
    const e = fails({
      secret: table({ columns: { id: text().primaryKey(), by: text() }, owner: 'by', visibility: 'none' }),
      posts: table({ columns: { id: text().primaryKey(), by: text(), secret_id: text().nullable().references('secret', { onDelete: 'set null' }) }, owner: 'by', visibility: 'public' }),
    });
    expect(e).toMatchObject({ code: 'schema_never_visible_parent', table: 'posts', column: 'secret_id' });
  });

  it('visibility and ownership rules that loop', () => {
    const loop = fails({
      a: table({ columns: { id: text().primaryKey(), b_id: text().nullable().references('b', { onDelete: 'set null' }) }, owner: { through: 'b_id' }, visibility: 'public' }),
      b: table({ columns: { id: text().primaryKey(), a_id: text().nullable().references('a', { onDelete: 'set null' }) }, owner: { through: 'a_id' }, visibility: 'public' }),
    });
    expect(loop.code).toBe('schema_bad_owner');
    expect(loop.message).toMatch(/loop/);
  });

  it('primary keys: missing, several, or not text', () => {
    expect(fails({ t: table({ columns: { name: text() }, owner: 'name', visibility: 'public' }) }).code).toBe('schema_no_primary_key');
    expect(fails({ t: table({ columns: { id: integer().primaryKey(), by: text() }, owner: 'by', visibility: 'public' }) }).code).toBe('schema_bad_primary_key');
    expect(fails({ t: table({ columns: { id: text().primaryKey(), id2: text().primaryKey() }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_bad_primary_key');
  });

  it('names that are unsafe, reserved or too long', () => {
    expect(fails({ 'bad-name': table({ columns: { id: text().primaryKey() }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_invalid_name');
    expect(fails({ t: table({ columns: { id: text().primaryKey(), 'x"; drop table users; --': text() }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_invalid_name');
    expect(fails({ _dovetail_outbox: table({ columns: { id: text().primaryKey() }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_invalid_name');
    expect(fails({ ['t'.repeat(64)]: table({ columns: { id: text().primaryKey() }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_invalid_name');
  });

  it('set null on a required column, bad defaults, bad identity, bad version', () => {
    expect(fails({ p: table({ columns: { id: text().primaryKey(), u: text().references('users', { onDelete: 'set null' }) }, owner: 'u', visibility: 'public' }) }).code).toBe('schema_bad_key_policy');
    expect(fails({ p: table({ columns: { id: text().primaryKey(), n: integer().default(1.5) }, owner: 'id', visibility: 'public' }) }).code).toBe('schema_bad_default');
    expect(fails({}, { identity: 'people' }).code).toBe('schema_bad_identity');
    expect(fails({}, { version: 0 }).code).toBe('schema_bad_version');
  });
});

const appSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    comments: table({
      columns: { id: text().primaryKey(), post_id: text().references('posts', { onDelete: 'cascade' }), author_id: text().references('users'), body: text() },
      owner: 'author_id',
      visibility: { through: 'post_id' },
    }),
    posts: table({
      columns: {
        id: text().primaryKey(),
        author_id: text().references('users', { onDelete: 'cascade' }),
        reply_to: text().nullable().references('posts', { onDelete: 'set null' }),
        body: text(),
        score: real().default(0),
        pinned: boolean().default(false),
        meta: json<{ tags: string[] }>().nullable(),
      },
      owner: 'author_id',
      visibility: 'public',
    }),
    users,
    // Two tables that point at each other: a cycle.
    teams: table({
      columns: { id: text().primaryKey(), owner_id: text(), lead_id: text().nullable().references('members', { onDelete: 'set null' }) },
      owner: 'owner_id',
      visibility: { members: { table: 'members', key: 'team_id', user: 'user_id' } },
    }),
    members: table({ columns: { id: text().primaryKey(), team_id: text().references('teams', { onDelete: 'cascade' }), user_id: text().references('users') }, owner: { through: 'team_id' }, visibility: { through: 'team_id' } }),
  },
});

describe('the key graph', () => {
  it('orders parents first, and finds self-references and cycles', () => {
    const { order, selfReferencing, cycles } = appSchema.model.graph;
    expect(order.indexOf('users')).toBeLessThan(order.indexOf('posts'));
    expect(order.indexOf('posts')).toBeLessThan(order.indexOf('comments'));
    expect(selfReferencing).toEqual(['posts']);
    expect(cycles).toEqual([['teams', 'members']]);
  });
});

describe('types flow from the definition', () => {
  it('derives rows and inserts', () => {
    type Post = Row<typeof appSchema, 'posts'>;
    expectTypeOf<Post>().toEqualTypeOf<{ id: string; author_id: string; reply_to: string | null; body: string; score: number; pinned: boolean; meta: { tags: string[] } | null }>();
    type NewPost = Insert<typeof appSchema, 'posts'>;
    expectTypeOf<NewPost>().toEqualTypeOf<{ id: string; author_id: string; body: string; reply_to?: string | null; score?: number; pinned?: boolean; meta?: { tags: string[] } | null }>();
  });
});

describe('SQLite DDL', () => {
  it('creates strict tables with every key declared, deferred, and the declared actions', () => {
    const db = new Sqlite(':memory:');
    db.pragma('foreign_keys = ON');
    for (const sql of appSchema.sqliteDdl()) db.exec(sql);
    const keys = db.prepare("SELECT m.name AS t, k.\"from\" AS c, k.\"table\" AS p, k.on_delete AS d FROM sqlite_schema m, pragma_foreign_key_list(m.name) k WHERE m.type = 'table' ORDER BY 1, 2").all();
    expect(keys).toEqual([
      { t: 'comments', c: 'author_id', p: 'users', d: 'NO ACTION' },
      { t: 'comments', c: 'post_id', p: 'posts', d: 'CASCADE' },
      { t: 'members', c: 'team_id', p: 'teams', d: 'CASCADE' },
      { t: 'members', c: 'user_id', p: 'users', d: 'NO ACTION' },
      { t: 'posts', c: 'author_id', p: 'users', d: 'CASCADE' },
      { t: 'posts', c: 'reply_to', p: 'posts', d: 'SET NULL' },
      { t: 'teams', c: 'lead_id', p: 'members', d: 'SET NULL' },
    ]);
    // Deferred: a child before its parent commits; a wrong type is refused (STRICT).
    db.exec('BEGIN');
    db.prepare('INSERT INTO posts (id, author_id, body) VALUES (?, ?, ?)').run('p1', 'u1', 'x');
    db.prepare('INSERT INTO users (id, name) VALUES (?, ?)').run('u1', 'Ann');
    db.exec('COMMIT');
    expect(() => db.prepare('INSERT INTO posts (id, author_id, body, score) VALUES (?, ?, ?, ?)').run('p2', 'u1', 'x', 'high')).toThrow(/cannot store TEXT value in REAL column/);
    expect(() => db.prepare('INSERT INTO posts (id, author_id, body, meta) VALUES (?, ?, ?, ?)').run('p3', 'u1', 'x', '{not json')).toThrow(/CHECK constraint failed/);
    expect(db.prepare('SELECT count(*) AS n FROM sqlite_schema WHERE type = ? AND name LIKE ?').get('index', '%_idx')).toEqual({ n: 7 });
    db.close();
  });
});
