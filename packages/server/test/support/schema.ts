import { defineSchema, table, text, boolean } from '@dovetail/schema';

/** Projects and tasks (scenarios O1-O5, D1-D5) plus chat (S3, S4, I3). */
export const serverSchema = defineSchema({
  version: 1,
  identity: 'users',
  tables: {
    users: table({ columns: { id: text().primaryKey(), name: text().default('') }, owner: 'id', visibility: 'public' }),
    projects: table({
      columns: { id: text().primaryKey(), owner_id: text().references('users', { onDelete: 'restrict' }), title: text() },
      owner: 'owner_id',
      visibility: 'owner',
    }),
    tasks: table({
      columns: {
        id: text().primaryKey(),
        project_id: text().references('projects', { onDelete: 'cascade', onConcurrentDelete: 'reject' }),
        parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }),
        title: text(),
        done: boolean().default(false),
      },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
    comments: table({
      columns: { id: text().primaryKey(), task_id: text().references('tasks', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }), author_id: text().references('users', { onDelete: 'cascade' }), body: text() },
      owner: 'author_id',
      visibility: { through: 'task_id' },
    }),
    conversations: table({
      columns: { id: text().primaryKey(), created_by: text().references('users', { onDelete: 'cascade' }), title: text().default('') },
      owner: 'created_by',
      visibility: { members: { table: 'members', key: 'conversation_id', user: 'user_id' } },
    }),
    members: table({
      columns: { id: text().primaryKey(), conversation_id: text().references('conversations', { onDelete: 'cascade' }), user_id: text().references('users', { onDelete: 'cascade' }) },
      owner: { through: 'conversation_id' },
      visibility: { through: 'conversation_id' },
    }),
    messages: table({
      columns: {
        id: text().primaryKey(),
        conversation_id: text().references('conversations', { onDelete: 'cascade', onConcurrentDelete: 'restore' }),
        sender_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
      },
      owner: 'sender_id',
      visibility: { through: 'conversation_id' },
    }),
  },
});
export type ServerSchema = typeof serverSchema;
