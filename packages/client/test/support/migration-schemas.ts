/**
 * Schema versions for the migration tests, shared with the child process
 * of the crash test. Version 1 is the scenario schema (users, projects,
 * tasks with subtasks, comments) plus `tasks.assignee_id`, a plain column
 * without a key, so that a later version can add a key to it.
 */
import { boolean, defineSchema, integer, table, text } from '@dovetail/schema';
import type { AnyColumn, Schema } from '@dovetail/schema';
import { createClient } from '@dovetail/client';
import type { Database, DovetailClient, MigrationProgress, SqliteDriver } from '@dovetail/client';

const users = table({
  columns: { id: text().primaryKey(), name: text().default('') },
  owner: 'id',
  visibility: 'public',
});

const projectColumns = {
  id: text().primaryKey(),
  owner_id: text().references('users', { onDelete: 'restrict' }),
  title: text(),
};
const projects = table({ columns: projectColumns, owner: 'owner_id', visibility: 'owner' });

const taskColumns = {
  id: text().primaryKey(),
  project_id: text().references('projects', { onDelete: 'cascade' }),
  parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }),
  assignee_id: text().nullable(),
  title: text(),
  done: boolean().default(false),
  rank: integer().default(0),
};
const tasks = table({ columns: taskColumns, owner: { through: 'project_id' }, visibility: { through: 'project_id' } });

const commentColumns = {
  id: text().primaryKey(),
  task_id: text().references('tasks', { onDelete: 'cascade' }),
  author_id: text().references('users', { onDelete: 'cascade' }),
  body: text(),
};
const comments = table({ columns: commentColumns, owner: 'author_id', visibility: { through: 'task_id' } });

export const base = { users, projects, tasks, comments };
export const columns = { projects: projectColumns, tasks: taskColumns, comments: commentColumns };

/** Rebuilds `projects` with another `owner_id` key. */
export const projectsTable = (owner_id: (typeof projectColumns)['owner_id']) =>
  table({ columns: { ...projectColumns, owner_id }, owner: 'owner_id', visibility: 'owner' });

/** `tasks` with some columns replaced or added. */
export const tasksTable = <C extends Record<string, AnyColumn>>(extra: C) =>
  table({ columns: { ...taskColumns, ...extra }, owner: { through: 'project_id' }, visibility: { through: 'project_id' } });

export const v1 = defineSchema({ version: 1, identity: 'users', tables: base });
export type V1 = typeof v1;

/**
 * Version 2 that rebuilds two parent tables: `projects` (its owner key
 * becomes `cascade`; children `tasks`, grandchildren `comments`) and `tasks`
 * (its project key becomes `restrict`; children `comments` and subtasks).
 */
export const rebuildParents = defineSchema({
  version: 2,
  identity: 'users',
  tables: {
    ...base,
    projects: projectsTable(text().references('users', { onDelete: 'cascade' })),
    tasks: tasksTable({ project_id: text().references('projects', { onDelete: 'restrict' }) }),
  },
});

/** The rows the migration tests write under version 1, as user `ann`. */
export async function seedV1(db: Database<V1>): Promise<void> {
  await db.mutate('addBob', (m) => m.insert('users', { id: 'bob', name: 'Bob' }));
  await db.mutate('createProjects', (m) => {
    m.insert('projects', { id: 'p1', owner_id: 'ann', title: 'Garden' });
    m.insert('projects', { id: 'p2', owner_id: 'bob', title: 'Kitchen' });
  });
  await db.mutate('createTasks', (m) => {
    m.insert('tasks', { id: 't1', project_id: 'p1', title: 'dig', rank: 1 });
    m.insert('tasks', { id: 't2', project_id: 'p1', parent_task_id: 't1', title: 'buy a spade', done: true });
    m.insert('tasks', { id: 't3', project_id: 'p1', parent_task_id: 't2', title: 'find the shop', assignee_id: 'bob' });
    m.insert('tasks', { id: 't4', project_id: 'p2', title: 'paint', rank: 7 });
  });
  await db.mutate('comment', (m) => {
    m.insert('comments', { id: 'c1', task_id: 't1', author_id: 'ann', body: 'deep enough?' });
    m.insert('comments', { id: 'c2', task_id: 't2', author_id: 'bob', body: 'got one' });
    m.insert('comments', { id: 'c3', task_id: 't3', author_id: 'ann', body: 'on Main St' });
    m.insert('comments', { id: 'c4', task_id: 't4', author_id: 'bob', body: 'blue' });
  });
  await db.mutate('renameTask', (m) => m.update('tasks', 't4', { title: 'paint the walls' }));
}

/** The user every migration test binds. */
export const USER = 'ann';

let ids = 0;

/** A client on `schema` over `driver`, bound to `USER`. */
export async function bindAs<S extends Schema>(
  schema: S,
  driver: SqliteDriver,
  onMigrationProgress?: (p: MigrationProgress) => void,
): Promise<{ client: DovetailClient<S>; db: Database<S> }> {
  const client = createClient({ schema, driver, newId: () => `m-${++ids}` });
  const db = await client.bind(onMigrationProgress ? { userId: USER, onMigrationProgress } : { userId: USER });
  return { client, db };
}
