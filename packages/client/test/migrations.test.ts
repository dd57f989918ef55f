import Sqlite from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseFileName, DovetailError, ForeignKeyViolation } from '@dovetail/client';
import type { Database, MigrationProgress, OutboxEntry, SqliteDriver, SqlRow, SqlValue } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { boolean, defineSchema, integer, sqliteCreateTable, table, text } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import { tempDir } from './fixtures.js';
import { interceptDriver } from './support/intercept-driver.js';
import { base, bindAs, columns, rebuildParents, seedV1, tasksTable, USER, v1 } from './support/migration-schemas.js';
import type { V1 } from './support/migration-schemas.js';

let t: ReturnType<typeof tempDir>;
let driver: SqliteDriver;
beforeEach(() => {
  t = tempDir();
  driver = nodeDriver({ directory: t.dir });
});
afterEach(() => t.cleanup());

// ---------------------------------------------------------------------------
// Schema versions used below (version 1 and `rebuildParents` are shared with
// the crash test).

/** Additive: a new table and two new columns, no rebuild needed. */
const addTableAndColumns = defineSchema({
  version: 2,
  identity: 'users',
  tables: {
    ...base,
    tasks: tasksTable({ priority: integer().default(3), note: text().nullable() }),
    labels: table({
      columns: { id: text().primaryKey(), project_id: text().references('projects', { onDelete: 'cascade' }), name: text() },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
  },
});

/** A key on `tasks.assignee_id`, a column that had none in version 1. */
const assigneeKey = defineSchema({
  version: 2,
  identity: 'users',
  tables: { ...base, tasks: tasksTable({ assignee_id: text().nullable().references('users', { onDelete: 'set null' }) }) },
});

/** Two steps: a column on `projects` (step 1), then the key on `tasks.assignee_id` (step 2). */
const archivedThenAssigneeKey = defineSchema({
  version: 2,
  identity: 'users',
  tables: {
    ...base,
    projects: table({ columns: { ...columns.projects, archived: boolean().default(false) }, owner: 'owner_id', visibility: 'owner' }),
    tasks: tasksTable({ assignee_id: text().nullable().references('users', { onDelete: 'set null' }) }),
  },
});

/** The same release, fixed: the column on `projects`, no key on assignee_id, and a note on tasks. */
const archivedFixed = defineSchema({
  version: 2,
  identity: 'users',
  tables: {
    ...base,
    projects: table({ columns: { ...columns.projects, archived: boolean().default(false) }, owner: 'owner_id', visibility: 'owner' }),
    tasks: tasksTable({ note: text().nullable() }),
  },
});

// ---------------------------------------------------------------------------
// Helpers

interface Queryable {
  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
}

/** better-sqlite3 straight on the user's file, outside the engine. */
function openRaw(): Sqlite.Database {
  return new Sqlite(join(t.dir, databaseFileName(USER)));
}

function rawQueryable(raw: Sqlite.Database): Queryable {
  return { query: <R extends SqlRow>(sql: string) => Promise.resolve(raw.prepare(sql).all() as R[]) };
}

/** Every row of the version 1 tables (version 1 columns only), and the engine's own tables. */
async function contents(db: Queryable): Promise<Record<string, SqlRow[]>> {
  const out: Record<string, SqlRow[]> = {};
  for (const tm of v1.model.tables) {
    out[tm.name] = await db.query(`SELECT ${tm.columns.map((c) => `"${c.name}"`).join(', ')} FROM "${tm.name}" ORDER BY id`);
  }
  out._dovetail_outbox = await db.query('SELECT * FROM _dovetail_outbox ORDER BY seq');
  out._dovetail_rejected = await db.query('SELECT * FROM _dovetail_rejected ORDER BY seq');
  return out;
}

interface FileState {
  readonly schema: unknown[];
  readonly meta: unknown[];
  readonly rows: Record<string, SqlRow[]>;
}

/** The whole file as SQLite sees it: schema, engine metadata, rows. */
async function fileState(): Promise<FileState> {
  const raw = openRaw();
  try {
    const q = rawQueryable(raw);
    return {
      schema: raw.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all(),
      meta: raw.prepare('SELECT key, value FROM _dovetail_meta ORDER BY key').all(),
      rows: await contents(q),
    };
  } finally {
    raw.close();
  }
}

async function expectKeysOnAndHolding(db: Queryable): Promise<void> {
  expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
  expect(await db.query('PRAGMA foreign_key_check')).toEqual([]);
  expect(await db.query('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
}

/** Binds version 1, writes the seed rows, signs out; returns what was written. */
async function seeded(extra?: (db: Database<V1>) => Promise<void>): Promise<Record<string, SqlRow[]>> {
  const { client, db } = await bindAs(v1, driver);
  await seedV1(db);
  await extra?.(db);
  const before = await contents(db);
  await client.signOut();
  return before;
}

async function failure(p: Promise<unknown>): Promise<DovetailError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DovetailError);
  return error as DovetailError;
}

/** Migrates to `schema`, checks keys, signs out; returns the report and the rows. */
async function migrateTo(schema: Schema): Promise<{ steps: readonly string[]; progress: MigrationProgress[]; after: Record<string, SqlRow[]> }> {
  const progress: MigrationProgress[] = [];
  const { client, db } = await bindAs(schema, driver, (p) => progress.push(p));
  await expectKeysOnAndHolding(db);
  const after = await contents(db);
  const steps = client.lastMigration?.steps ?? [];
  await client.signOut();
  return { steps, progress, after };
}

const keysOf = (db: Queryable, tableName: string) =>
  db.query<{ from: string; table: string; on_delete: string }>(`SELECT "from", "table", on_delete FROM pragma_foreign_key_list('${tableName}') ORDER BY "from"`);

// ---------------------------------------------------------------------------

describe('additive migrations (G11)', () => {
  it('adds a table and nullable/defaulted columns, keeps every row, reports each step', async () => {
    const before = await seeded();
    const progress: MigrationProgress[] = [];
    const { client, db } = await bindAs(addTableAndColumns, driver, (p) => progress.push(p));

    const report = client.lastMigration;
    expect(report?.from).toBe(1);
    expect(report?.to).toBe(2);
    expect([...(report?.steps ?? [])].sort()).toEqual(['add column tasks.note', 'add column tasks.priority', 'create table labels']);
    expect(progress).toEqual(report?.steps.map((description, i) => ({ step: i + 1, of: 3, description })));

    expect(await contents(db)).toEqual(before);
    const tasks = await db.rows('tasks');
    expect(tasks.map((r) => [r.id, r.priority, r.note])).toEqual([
      ['t1', 3, null],
      ['t2', 3, null],
      ['t3', 3, null],
      ['t4', 3, null],
    ]);
    // The new table and columns are usable, with their keys enforced.
    await db.mutate('label', (m) => {
      m.insert('labels', { id: 'l1', project_id: 'p1', name: 'outdoor' });
      m.update('tasks', 't1', { note: 'before the rain', priority: 1 });
    });
    expect(await db.get('tasks', 't1')).toMatchObject({ note: 'before the rain', priority: 1, title: 'dig' });
    await expect(db.mutate('bad', (m) => m.insert('labels', { id: 'l2', project_id: 'nope', name: 'x' }))).rejects.toBeInstanceOf(ForeignKeyViolation);
    expect(await db.query("SELECT value FROM _dovetail_meta WHERE key = 'schema_version'")).toEqual([{ value: '2' }]);
    await expectKeysOnAndHolding(db);
    await client.signOut();

    // Opening again at the same version migrates nothing.
    const again = await migrateTo(addTableAndColumns);
    expect(again.steps).toEqual([]);
    expect(again.progress).toEqual([]);
  });
});

describe('table rebuilds keep child rows (G11, Q2)', () => {
  it('rebuilds parent tables (projects, tasks) and every child and grandchild row survives', async () => {
    const before = await seeded();
    expect(before.tasks).toHaveLength(4);
    expect(before.comments).toHaveLength(4);

    const { client, db } = await bindAs(rebuildParents, driver);
    const steps = client.lastMigration?.steps ?? [];
    expect(steps).toHaveLength(2);
    expect(steps[0]).toMatch(/^rebuild table projects \(/);
    expect(steps[1]).toMatch(/^rebuild table tasks \(/);

    // Every row, children of the rebuilt tables included, is still there, unchanged.
    expect(await contents(db)).toEqual(before);
    // The rebuilds really happened: the new key actions are in the file and act.
    expect(await keysOf(db, 'projects')).toEqual([{ from: 'owner_id', table: 'users', on_delete: 'CASCADE' }]);
    expect((await keysOf(db, 'tasks')).find((k) => k.from === 'project_id')?.on_delete).toBe('NO ACTION');
    await expect(db.mutate('dropProject', (m) => m.delete('projects', 'p1'))).rejects.toBeInstanceOf(ForeignKeyViolation);
    // Self-reference and child keys still point at the rebuilt table.
    await expect(db.mutate('orphan', (m) => m.insert('comments', { id: 'c9', task_id: 'nope', author_id: 'ann', body: 'x' }))).rejects.toBeInstanceOf(ForeignKeyViolation);
    await db.mutate('dropTask', (m) => m.delete('tasks', 't3'));
    expect((await db.rows('comments')).map((c) => c.id)).toEqual(['c1', 'c2', 'c4']); // c3 cascaded with t3
    await expectKeysOnAndHolding(db);
    await client.signOut();
  });

  it('the naive rebuild (keys turned off inside the transaction) cascades the children away, which the test above would catch', async () => {
    const before = await seeded();
    const raw = openRaw();
    try {
      raw.pragma('foreign_keys = ON'); // as every engine connection runs
      const projects = rebuildParents.table('projects');
      const cols = projects.columns.map((c) => `"${c.name}"`).join(', ');
      raw.exec('BEGIN');
      raw.exec('PRAGMA foreign_keys = OFF'); // a no-op inside a transaction
      expect(raw.pragma('foreign_keys', { simple: true })).toBe(1);
      raw.exec(sqliteCreateTable(projects, 'new_projects'));
      raw.exec(`INSERT INTO new_projects (${cols}) SELECT ${cols} FROM projects`);
      raw.exec('DROP TABLE projects'); // implicit DELETE FROM projects: ON DELETE CASCADE fires
      raw.exec('ALTER TABLE new_projects RENAME TO projects');
      raw.exec('COMMIT'); // nothing dangles, so nothing stops the commit
      const after = await contents(rawQueryable(raw));
      expect(after.projects).toEqual(before.projects);
      expect(after.tasks).toEqual([]);
      expect(after.comments).toEqual([]);
      expect(after).not.toEqual(before);
      expect(raw.prepare('PRAGMA foreign_key_check').all()).toEqual([]); // and no check would notice
    } finally {
      raw.close();
    }
  });

  it("follows SQLite's twelve-step order: keys off outside the transaction, check before COMMIT, keys on after", async () => {
    await seeded();
    const trace: string[] = [];
    const tracing = interceptDriver(driver, {
      before: (sql) => {
        trace.push(sql.split('\n')[0] ?? sql);
        return undefined;
      },
    });
    const { client } = await bindAs(rebuildParents, tracing);
    await client.signOut();
    const projects = trace.findIndex((s) => s.startsWith('CREATE TABLE "_dovetail_rebuild_projects"'));
    expect(projects).toBeGreaterThan(0);
    const step = trace.slice(trace.lastIndexOf('PRAGMA foreign_keys = OFF', projects), trace.indexOf('PRAGMA foreign_keys = ON', projects) + 1);
    const at = (prefix: string): number => {
      const i = step.findIndex((s) => s.startsWith(prefix));
      expect(i, `${prefix} in ${JSON.stringify(step)}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      'PRAGMA foreign_keys = OFF',
      'BEGIN',
      'CREATE TABLE "_dovetail_rebuild_projects"',
      'INSERT INTO "_dovetail_rebuild_projects"',
      'DROP TABLE "projects"',
      'ALTER TABLE "_dovetail_rebuild_projects" RENAME TO "projects"',
      'CREATE INDEX "projects_owner_id_idx"',
      'PRAGMA foreign_key_check',
      'COMMIT',
      'PRAGMA foreign_keys = ON',
    ].map(at);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(step.filter((s) => s === 'PRAGMA foreign_keys = OFF')).toHaveLength(1);
  });

  it('refuses to rebuild when keys cannot be turned off, and changes nothing', async () => {
    await seeded();
    const before = await fileState();
    const stubborn = interceptDriver(driver, { before: (sql) => (sql === 'PRAGMA foreign_keys = OFF' ? 'skip' : undefined) });
    const error = await failure(bindAs(rebuildParents, stubborn));
    expect(error.code).toBe('migration_failed');
    expect(error.message).toMatch(/step 1 of 2 \(rebuild table projects.*could not turn foreign keys off.*nothing was changed/);
    expect(await fileState()).toEqual(before);
  });
});

describe('keys are on after every migration (G1, G11)', () => {
  const cases: [string, Schema, RegExp][] = [
    ['a nullable and a defaulted column, a new table', addTableAndColumns, /^add column|^create table/],
    ["a key's onDelete changes on parent tables", rebuildParents, /^rebuild table/],
    ['a key on an existing column whose values all have parents', assigneeKey, /^rebuild table tasks \(key assignee_id -> users\.id\)$/],
    [
      'a key is dropped',
      defineSchema({ version: 2, identity: 'users', tables: { ...base, tasks: tasksTable({ parent_task_id: text().nullable() }) } }),
      /^rebuild table tasks \(drop key parent_task_id/,
    ],
    [
      'a default and a uniqueness change',
      defineSchema({
        version: 2,
        identity: 'users',
        tables: { ...base, tasks: tasksTable({ rank: integer().default(5) }), projects: table({ columns: { ...columns.projects, title: text().unique() }, owner: 'owner_id', visibility: 'owner' }) },
      }),
      /^rebuild table (projects|tasks) \(column (title|rank) changed\)$/,
    ],
  ];
  it.each(cases)('%s', async (_name, schema, stepPattern) => {
    const before = await seeded();
    const { steps, after } = await migrateTo(schema); // checks foreign_keys = 1 and an empty foreign_key_check
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) expect(s).toMatch(stepPattern);
    expect(after).toEqual(before);
    // And on the next open, too.
    const { client, db } = await bindAs(schema, driver);
    expect(client.lastMigration?.steps).toEqual([]);
    await expectKeysOnAndHolding(db);
    await client.signOut();
  });
});

describe("the engine's own tables survive (G11)", () => {
  it('keeps pending outbox entries, the rejected log and the client id identical through a rebuild', async () => {
    let clientId = '';
    let outbox: OutboxEntry[] = [];
    await seeded(async (db) => {
      clientId = db.clientId;
      outbox = await db.outbox();
    });
    // A mutation the server refused earlier, in the rejected log.
    const raw = openRaw();
    raw
      .prepare('INSERT INTO _dovetail_rejected (outbox_seq, id, name, ops, reason, message, rows, created_at, rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(0, 'm-old', 'renameProject', '[{"op":"update","table":"projects","id":"p2","set":{"title":"x"}}]', 'forbidden', 'not yours', '[]', 1, 2);
    raw.close();
    const before = await fileState();
    expect(before.rows._dovetail_outbox).toHaveLength(5);

    const { client, db } = await bindAs(rebuildParents, driver);
    expect(client.lastMigration?.steps).toHaveLength(2);
    const after = await contents(db);
    expect(after._dovetail_outbox).toEqual(before.rows._dovetail_outbox);
    expect(after._dovetail_rejected).toEqual(before.rows._dovetail_rejected);
    expect(await db.outbox()).toEqual(outbox);
    expect(db.clientId).toBe(clientId);
    expect(await db.query("SELECT value FROM _dovetail_meta WHERE key = 'owner'")).toEqual([{ value: USER }]);
    // New mutations queue behind the old ones.
    const m = await db.mutate('afterUpgrade', (b) => b.update('tasks', 't1', { done: true }));
    expect((await db.outbox()).map((e) => e.id)).toEqual([...outbox.map((e) => e.id), m.id]);
    await client.signOut();
  });
});

describe('refused changes (G11)', () => {
  const { rank: _rank, ...tasksWithoutRank } = columns.tasks;
  const cases: [string, Schema, RegExp][] = [
    ['dropping a table', defineSchema({ version: 2, identity: 'users', tables: { users: base.users, projects: base.projects, tasks: base.tasks } }), /table 'comments' is gone/],
    [
      'dropping a column',
      defineSchema({ version: 2, identity: 'users', tables: { ...base, tasks: table({ columns: tasksWithoutRank, owner: { through: 'project_id' }, visibility: { through: 'project_id' } }) } }),
      /column tasks\.rank is gone/,
    ],
    ['changing a column type', defineSchema({ version: 2, identity: 'users', tables: { ...base, tasks: tasksTable({ rank: text().default('0') }) } }), /column tasks\.rank changes type from integer to text/],
    [
      'adding a required column without a default',
      defineSchema({ version: 2, identity: 'users', tables: { ...base, projects: table({ columns: { ...columns.projects, color: text() }, owner: 'owner_id', visibility: 'owner' }) } }),
      /new column projects\.color is required and has no default/,
    ],
    [
      'changing the schema without bumping the version',
      defineSchema({ version: 1, identity: 'users', tables: { ...base, projects: table({ columns: { ...columns.projects, color: text().nullable() }, owner: 'owner_id', visibility: 'owner' }) } }),
      /add column projects\.color.*version is still 1/,
    ],
  ];
  it.each(cases)('refuses %s and leaves the database untouched', async (_name, schema, message) => {
    const rows = await seeded();
    const before = await fileState();
    const client = bindAs(schema, driver);
    const error = await failure(client);
    expect(error.code).toBe('migration_refused');
    expect(error.message).toMatch(message);
    expect(await fileState()).toEqual(before);
    // The old app still opens it, with every row.
    const old = await bindAs(v1, driver);
    expect(old.client.lastMigration?.steps).toEqual([]);
    expect(await contents(old.db)).toEqual(rows);
    await expectKeysOnAndHolding(old.db);
    await old.client.signOut();
  });

  it('refuses to open a version 2 database with a version 1 app (schema_downgrade)', async () => {
    await seeded();
    await migrateTo(addTableAndColumns);
    const before = await fileState();
    const error = await failure(bindAs(v1, driver));
    expect(error.code).toBe('schema_downgrade');
    expect(error.message).toMatch(/schema version 2, newer than this app's version 1/);
    expect(await fileState()).toEqual(before);
    expect((await migrateTo(addTableAndColumns)).steps).toEqual([]); // the newer app still opens it
  });
});

describe('a failing step leaves the previous version intact (G11)', () => {
  /** Tasks whose assignee has no users row: fine without a key, broken with one. */
  async function withDanglingAssignees(db: Database<V1>): Promise<void> {
    await db.mutate('danglers', (m) => {
      m.insert('tasks', { id: 'scratch', project_id: 'p2', title: 'scratch' });
      m.insert('tasks', { id: 't5', project_id: 'p1', title: 'water', assignee_id: 'ghost' });
      m.insert('tasks', { id: 't6', project_id: 'p2', title: 'sand', assignee_id: 'nobody' });
    });
    // A gap in the rowids, so a report by rowid of the rebuilt copy would name the wrong rows.
    await db.mutate('dropScratch', (m) => m.delete('tasks', 'scratch'));
  }

  it('rolls back a rebuild whose foreign_key_check fails, names the step and the rows, and keeps keys on', async () => {
    const rows = await seeded(withDanglingAssignees);
    const before = await fileState();
    const keysAtClose: unknown[] = [];
    const watched = interceptDriver(driver, { beforeClose: async (conn) => void keysAtClose.push(await conn.all('PRAGMA foreign_keys')) });

    const error = await failure(bindAs(assigneeKey, watched));
    expect(error.code).toBe('migration_failed');
    expect(error.message).toMatch(/^step 1 of 1 \(rebuild table tasks \(key assignee_id -> users\.id\)\) would leave 2 row\(s\) with broken keys/);
    expect(error.message).toContain("tasks.assignee_id = 'ghost' has no users.id (row tasks 't5')");
    expect(error.message).toContain("tasks.assignee_id = 'nobody' has no users.id (row tasks 't6')");
    expect(keysAtClose).toEqual([[{ foreign_keys: 1 }]]); // the failed rebuild turned keys back on
    expect(await fileState()).toEqual(before);

    // Version 1 still opens, keys on, every row there; the rows can be repaired there.
    const old = await bindAs(v1, driver);
    expect(await contents(old.db)).toEqual(rows);
    await expectKeysOnAndHolding(old.db);
    await old.db.mutate('repair', (m) => {
      m.insert('users', { id: 'ghost', name: 'Ghost' });
      m.update('tasks', 't6', { assignee_id: null });
    });
    await old.client.signOut();

    // Then the same version 2 migrates.
    const { client, db } = await bindAs(assigneeKey, driver);
    expect(client.lastMigration?.steps).toEqual(['rebuild table tasks (key assignee_id -> users.id)']);
    expect((await db.get('tasks', 't5'))?.assignee_id).toBe('ghost');
    await expect(db.mutate('bad', (m) => m.update('tasks', 't1', { assignee_id: 'nobody' }))).rejects.toBeInstanceOf(ForeignKeyViolation);
    await expectKeysOnAndHolding(db);
    await client.signOut();
  });

  it('keeps an earlier committed step when a later one fails, and resumes from it with a fixed schema', async () => {
    const rows = await seeded(withDanglingAssignees);
    const progress: MigrationProgress[] = [];
    const error = await failure(bindAs(archivedThenAssigneeKey, driver, (p) => progress.push(p)));
    expect(error.code).toBe('migration_failed');
    expect(error.message).toMatch(/^step 2 of 2 \(rebuild table tasks \(key assignee_id -> users\.id\)\) would leave 2 row\(s\) with broken keys/);
    expect(progress.map((p) => `${p.step}/${p.of} ${p.description}`)).toEqual(['1/2 add column projects.archived', '2/2 rebuild table tasks (key assignee_id -> users.id)']);

    // Step 1 is committed, step 2 is not; no rows lost, no key broken.
    const raw = openRaw();
    try {
      const q = rawQueryable(raw);
      expect(await contents(q)).toEqual(rows);
      expect(raw.prepare('SELECT name FROM pragma_table_info(\'projects\') WHERE name = \'archived\'').all()).toEqual([{ name: 'archived' }]);
      expect(await keysOf(q, 'tasks')).not.toContainEqual(expect.objectContaining({ from: 'assignee_id' }));
      expect(raw.prepare("SELECT name FROM sqlite_schema WHERE name LIKE '_dovetail_rebuild_%'").all()).toEqual([]);
      expect(raw.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
      expect(raw.prepare("SELECT value FROM _dovetail_meta WHERE key = 'schema_version'").all()).toEqual([{ value: '1' }]);
    } finally {
      raw.close();
    }

    // The fixed release resumes after step 1: it is not run again.
    const { client, db } = await bindAs(archivedFixed, driver);
    expect(client.lastMigration).toEqual({ from: 1, to: 2, steps: ['add column tasks.note'] });
    expect(await contents(db)).toEqual(rows);
    expect((await db.rows('projects')).map((p) => p.archived)).toEqual([false, false]);
    expect(await db.query("SELECT value FROM _dovetail_meta WHERE key = 'schema_version'")).toEqual([{ value: '2' }]);
    await expectKeysOnAndHolding(db);
    await client.signOut();
  });
});
