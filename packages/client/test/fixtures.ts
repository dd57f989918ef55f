import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineSchema, integer, table, text, boolean } from '@dovetail/schema';
import { createClient } from '@dovetail/client';
import type { DovetailClient, SqliteDriver } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';

/**
 * The schema of the scenarios: users, projects, tasks (with subtasks, a
 * self-reference) and comments.
 */
export const scenarioSchema = defineSchema({
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
      visibility: 'owner',
    }),
    tasks: table({
      columns: {
        id: text().primaryKey(),
        project_id: text().references('projects', { onDelete: 'cascade' }),
        parent_task_id: text().nullable().references('tasks', { onDelete: 'set null' }),
        title: text(),
        done: boolean().default(false),
        rank: integer().default(0),
      },
      owner: { through: 'project_id' },
      visibility: { through: 'project_id' },
    }),
    comments: table({
      columns: {
        id: text().primaryKey(),
        task_id: text().references('tasks', { onDelete: 'cascade' }),
        author_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
      },
      owner: 'author_id',
      visibility: { through: 'task_id' },
    }),
  },
});
export type ScenarioSchema = typeof scenarioSchema;

/** A fresh directory for database files, removed by `cleanup`. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dovetail-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;
/** Deterministic ids, so failures are reproducible. */
export function sequentialIds(prefix = 'id'): () => string {
  return () => `${prefix}-${++counter}`;
}

export function scenarioClient(driver: SqliteDriver): DovetailClient<ScenarioSchema> {
  return createClient({ schema: scenarioSchema, driver, newId: sequentialIds('m') });
}

export { nodeDriver };
