import { boolean, defineSchema, table, text } from '@dovetail/schema';

export const e2eSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({ columns: { id: text().primaryKey(), name: text().default('') }, owner: 'id', visibility: 'public' }),
    projects: table({
      columns: { id: text().primaryKey(), owner_id: text().references('users', { onDelete: 'restrict' }), title: text(), public: boolean().default(false) },
      owner: 'owner_id',
      visibility: 'owner',
    }),
    tasks: table({
      columns: { id: text().primaryKey(), project_id: text().references('projects', { onDelete: 'cascade' }), parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }), title: text() },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
    comments: table({
      columns: { id: text().primaryKey(), task_id: text().references('tasks', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }), author_id: text().references('users', { onDelete: 'cascade' }), body: text() },
      owner: 'author_id',
      visibility: { through: 'task_id' },
    }),
  },
});
export type E2eSchema = typeof e2eSchema;
