/**
 * The example schema of `npm start` and `npm run demo`: projects with tasks
 * (and subtasks) and comments. Projects are public; only their owner
 * changes them.
 */
import { boolean, defineSchema, table, text } from '@dovetail/schema';

export const exampleSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({
      columns: { id: text().primaryKey(), name: text().default('') },
      owner: 'id',
      visibility: 'public',
    }),
    projects: table({
      columns: {
        id: text().primaryKey(),
        owner_id: text().references('users', { onDelete: 'restrict' }),
        title: text(),
      },
      owner: 'owner_id',
      visibility: 'public',
    }),
    tasks: table({
      columns: {
        id: text().primaryKey(),
        project_id: text().references('projects', { onDelete: 'cascade' }),
        parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }),
        title: text(),
        done: boolean().default(false),
      },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
    comments: table({
      columns: {
        id: text().primaryKey(),
        task_id: text().references('tasks', { onDelete: 'cascade', onConcurrentDelete: 'reject' }),
        author_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
      },
      owner: 'author_id',
      visibility: { through: 'task_id' },
    }),
  },
});
export type ExampleSchema = typeof exampleSchema;
