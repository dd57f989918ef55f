import Sqlite from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseFileName } from '@dovetail/client';
import type { SqliteDriver, SqlRow } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { tempDir } from './fixtures.js';
import { bindAs, rebuildParents, seedV1, USER, v1 } from './support/migration-schemas.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const childScript = join(here, 'support', 'migrate-then-crash.ts');

let t: ReturnType<typeof tempDir>;
let driver: SqliteDriver;
beforeEach(() => {
  t = tempDir();
  driver = nodeDriver({ directory: t.dir });
});
afterEach(() => t.cleanup());

/** Runs the version 2 migration in a child process that SIGKILLs itself before `prefix` runs. */
function migrateAndCrash(prefix: string): Promise<{ signal: NodeJS.Signals | null; code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dovetail/source', childScript, t.dir, prefix], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** The process died holding the database open: a clean close would have removed its write-ahead log. */
function expectUncleanShutdown(): void {
  expect(existsSync(join(t.dir, `${databaseFileName(USER)}-wal`))).toBe(true);
}

/** Every row of every table, the engine's included, and the schema; read outside the engine. */
function rawState(): { rows: Record<string, SqlRow[]>; tables: Record<string, string>; meta: Record<string, string>; fkCheck: unknown[]; integrity: unknown } {
  const raw = new Sqlite(join(t.dir, databaseFileName(USER)));
  try {
    const rows: Record<string, SqlRow[]> = {};
    for (const tm of v1.model.tables) {
      rows[tm.name] = raw.prepare(`SELECT ${tm.columns.map((c) => `"${c.name}"`).join(', ')} FROM "${tm.name}" ORDER BY id`).all() as SqlRow[];
    }
    rows._dovetail_outbox = raw.prepare('SELECT * FROM _dovetail_outbox ORDER BY seq').all() as SqlRow[];
    const tables = Object.fromEntries(
      (raw.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string; sql: string }[]).map((r) => [r.name, r.sql]),
    );
    const meta = Object.fromEntries((raw.prepare('SELECT key, value FROM _dovetail_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    return { rows, tables, meta, fkCheck: raw.prepare('PRAGMA foreign_key_check').all(), integrity: raw.pragma('integrity_check', { simple: true }) };
  } finally {
    raw.close();
  }
}

const snapshotVersion = (meta: Record<string, string>): number => (JSON.parse(meta.schema_snapshot ?? '{}') as { version: number }).version;

/** Version 1 with rows, pending in the outbox; returns the file as it was. */
async function seeded(): Promise<ReturnType<typeof rawState>> {
  const { client, db } = await bindAs(v1, driver);
  await seedV1(db);
  await client.signOut();
  return rawState();
}

/** Binds version 2: the migration resumes and finishes; keys on, every row there. */
async function resumeAndCheck(before: ReturnType<typeof rawState>): Promise<readonly string[]> {
  const { client, db } = await bindAs(rebuildParents, driver);
  const steps = client.lastMigration?.steps ?? [];
  expect(await db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
  expect(await db.query('PRAGMA foreign_key_check')).toEqual([]);
  expect((await db.query<{ on_delete: string }>("SELECT on_delete FROM pragma_foreign_key_list('projects')"))[0]?.on_delete).toBe('CASCADE');
  expect((await db.query<{ from: string; on_delete: string }>("SELECT \"from\", on_delete FROM pragma_foreign_key_list('tasks')")).find((k) => k.from === 'project_id')?.on_delete).toBe('NO ACTION');
  await client.signOut();
  const after = rawState();
  expect(after.rows).toEqual(before.rows);
  expect(after.meta.schema_version).toBe('2');
  expect(after.fkCheck).toEqual([]);
  return steps;
}

describe('a migration killed mid-step (G10, G11)', () => {
  it('killed while copying into the first rebuild table: the file is fully at version 1, then migrates on the next bind', async () => {
    const before = await seeded();
    const run = await migrateAndCrash('INSERT INTO "_dovetail_rebuild_projects"');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('step 1 of 2: rebuild table projects');
    expect(run.stdout).toContain('crashing before: INSERT INTO "_dovetail_rebuild_projects"');
    expect(run.signal).toBe('SIGKILL');
    expectUncleanShutdown();

    const crashed = rawState();
    expect(crashed.integrity).toBe('ok');
    expect(crashed.fkCheck).toEqual([]);
    expect(crashed.rows).toEqual(before.rows); // children included, outbox included
    expect(crashed.tables).toEqual(before.tables); // no half-built table left behind
    expect(crashed.meta).toEqual(before.meta);

    // The version 1 app still opens it as it was, keys on.
    const old = await bindAs(v1, driver);
    expect(old.client.lastMigration?.steps).toEqual([]);
    expect(await old.db.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    await old.client.signOut();

    const steps = await resumeAndCheck(before);
    expect(steps).toHaveLength(2);
  });

  it('killed right before the second rebuild drops the old table: step 1 stays, step 2 resumes on the next bind', async () => {
    const before = await seeded();
    const run = await migrateAndCrash('DROP TABLE "tasks"');
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('step 2 of 2: rebuild table tasks');
    expect(run.stdout).toContain('crashing before: DROP TABLE "tasks"');
    expect(run.signal).toBe('SIGKILL');
    expectUncleanShutdown();

    const crashed = rawState();
    expect(crashed.integrity).toBe('ok');
    expect(crashed.fkCheck).toEqual([]);
    expect(crashed.rows).toEqual(before.rows); // tasks and comments, children of both rebuilt tables, all there
    expect(Object.keys(crashed.tables).sort()).toEqual(Object.keys(before.tables).sort());
    expect(crashed.tables.projects).toMatch(/"owner_id" TEXT NOT NULL REFERENCES "users" \("id"\) ON DELETE CASCADE/); // step 1 committed
    expect(crashed.tables.tasks).toBe(before.tables.tasks); // step 2 did not
    expect(crashed.meta.schema_version).toBe('1');
    expect(snapshotVersion(crashed.meta)).toBe(1);
    expect(crashed.meta.migration_target).toBe('2');

    // The old app cannot use the half-migrated file, and says why.
    const old = await bindAs(v1, nodeDriver({ directory: t.dir })).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(old?.code).toBe('schema_downgrade');
    expect(old?.message).toMatch(/migration to schema version 2 was started/);

    const steps = await resumeAndCheck(before);
    expect(steps).toEqual([expect.stringMatching(/^rebuild table tasks \(/)]);
    expect(rawState().meta.migration_target).toBeUndefined();
  });
});
