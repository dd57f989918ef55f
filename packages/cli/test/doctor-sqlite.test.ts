import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, snapshotOf } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { defineSchema, quoteLiteral, table, text } from '@dovetail/schema';
import { DoctorError, diagnose, exitCodeOf, parseTarget, renderReport, renderRepair, repair } from '../src/doctor/mod.js';
import type { DoctorProgress, DoctorReport, Finding, FindingOf } from '../src/doctor/mod.js';
import { socialV1, socialV2 } from './support/doctor-schema.js';
import { deviceFile, rowsOf, tempDir, writeWithKeysOff } from './support/doctor-sqlite.js';

const orphanTexts = (report: DoctorReport): string[] =>
  report.findings.flatMap((f) => (f.code === 'orphan_rows' ? f.details.rows.map((r) => r.text) : [])).sort();

const find = <C extends Finding['code']>(report: DoctorReport, code: C): FindingOf<C>[] => report.findings.filter((f): f is FindingOf<C> => f.code === code);

/** Puts a SQLite backup back in place of the file (nothing else has it open) and diagnoses it. */
async function restored(backup: string | undefined, path: string, schema = socialV1): Promise<DoctorReport> {
  expect(backup !== undefined && existsSync(backup)).toBe(true);
  copyFileSync(backup ?? '', path);
  return diagnose(parseTarget(path), { schema });
}

/** The file's schema snapshot says version 2 while its posts table never got `reply_to_id`: a migration that recorded more than it did. */
const stampedVersion2 = `UPDATE _dovetail_meta SET value = '2' WHERE key = 'schema_version';
  UPDATE _dovetail_meta SET value = ${quoteLiteral(JSON.stringify(snapshotOf(socialV2.model)))} WHERE key = 'schema_snapshot';`;

describe('doctor on a SQLite device file', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('S1: names posts whose owner is gone or unknown, deletes them after their reactions, with a restorable backup', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) =>
      db.exec(`INSERT INTO posts (id, owner_id, body) VALUES ('p_old', 'u_old', 'from an earlier session'), ('p_unknown', 'unknown', 'before sign-in');
               INSERT INTO reactions (id, post_id, owner_id, emoji) VALUES ('r_old', 'p_old', 'u_ann', '+1');`),
    );
    const target = parseTarget(path);
    const events: DoctorProgress[] = [];
    const report = await diagnose(target, { schema: socialV1, onProgress: (e) => events.push(e) });

    expect(report.healthy).toBe(false);
    expect(exitCodeOf(report)).toBe(1);
    expect(orphanTexts(report)).toEqual([`posts.owner_id = 'u_old' has no profiles.id`, `posts.owner_id = 'unknown' has no profiles.id`]);
    const [orphans] = find(report, 'orphan_rows');
    expect(orphans?.details).toMatchObject({ count: 2, keyInDatabase: true, nullable: false });
    expect(orphans?.details.rows.map((r) => r.id)).toEqual(['p_old', 'p_unknown']);
    expect(find(report, 'keys_declared')[0]?.details.keys).toBe(8);
    expect(find(report, 'engine_state')[0]?.details).toMatchObject({ side: 'device', owner: 'u_ann', outboxDepth: 1, rejected: 0, cursorAgeKnown: false });
    expect(events.some((e) => e.phase === 'scan' && e.table === 'posts' && e.rowsEstimate >= 3)).toBe(true);

    const text = renderReport(report);
    expect(text).toContain(`posts.owner_id = 'u_old' has no profiles.id  (row posts p_old)`);
    expect(text).toContain('Problems (1)');
    expect(report.plan?.steps.map((s) => [s.action, s.table])).toEqual([
      ['delete_rows', 'reactions'],
      ['delete_rows', 'posts'],
    ]);
    expect(report.plan?.steps[1]?.expectedRows).toBe(2);

    const dry = await repair(target, report, { schema: socialV1, yes: false });
    expect(dry.applied).toBe(false);
    expect(renderRepair(dry)).toContain('Nothing was changed');
    expect(rowsOf(path, 'SELECT id FROM posts ORDER BY id')).toHaveLength(3);

    const repairEvents: DoctorProgress[] = [];
    const result = await repair(target, report, { schema: socialV1, yes: true, onProgress: (e) => repairEvents.push(e) });
    expect(result.failed).toBeUndefined();
    expect(result.applied).toBe(true);
    expect(result.steps.map((s) => s.rows)).toEqual([1, 2]);
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(repairEvents.slice(0, 3).map((e) => e.phase)).toEqual(['backup', 'repair', 'repair']);
    expect(rowsOf(path, 'SELECT id FROM posts ORDER BY id')).toEqual([{ id: 'p_ann' }]);
    expect(rowsOf(path, 'SELECT id FROM reactions')).toEqual([]);
    expect(exitCodeOf(await diagnose(target, { schema: socialV1 }))).toBe(0);

    // The backup is a full copy from before the repair: putting it back brings every row back.
    const backup = result.backup ?? '';
    expect(backup).toMatch(/\.doctor-backup-\d{4}-\d\d-\d\dT[\d-]+Z\.db$/);
    expect(rowsOf(backup, 'SELECT id FROM posts ORDER BY id')).toHaveLength(3);
    expect(orphanTexts(await restored(backup, path))).toEqual(orphanTexts(report));
  });

  it('S3: names messages and members of a conversation that does not exist, and deletes them', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) =>
      db.exec(`INSERT INTO messages (id, conversation_id, author_id, body) VALUES ('m_1', 'c_gone', 'u_ann', 'are you there?'), ('m_2', 'c_gone', 'u_ann', 'hello?');
               INSERT INTO members (id, conversation_id, user_id) VALUES ('mb_1', 'c_gone', 'u_ann');`),
    );
    const target = parseTarget(path);
    const report = await diagnose(target, { schema: socialV1 });
    expect(orphanTexts(report)).toEqual([
      `members.conversation_id = 'c_gone' has no conversations.id`,
      `messages.conversation_id = 'c_gone' has no conversations.id`,
      `messages.conversation_id = 'c_gone' has no conversations.id`,
    ]);
    expect(report.plan?.steps.map((s) => `${s.action} ${s.table} ${s.expectedRows ?? '?'}`)).toEqual(['delete_rows members 1', 'delete_rows messages 2']);

    const result = await repair(target, report, { schema: socialV1, yes: true });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(rowsOf(path, 'SELECT id FROM messages')).toEqual([{ id: 'm_ann' }]);
    expect(existsSync(result.backup ?? '')).toBe(true);
    expect(rowsOf(result.backup ?? '', 'SELECT count(*) AS n FROM messages')).toEqual([{ n: 3 }]);
    expect(orphanTexts(await restored(result.backup, path))).toEqual(orphanTexts(report));
  });

  it('rows that depend on a deleted orphan follow their key: a reply keeps its row without its parent, a reaction goes', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV2, (db) =>
      db.exec(`INSERT INTO posts (id, owner_id, body) VALUES ('p_old', 'u_old', 'x');
               INSERT INTO posts (id, owner_id, body, reply_to_id) VALUES ('p_reply', 'u_ann', 're', 'p_old');
               INSERT INTO reactions (id, post_id, owner_id, emoji) VALUES ('r_old', 'p_old', 'u_ann', '+1');`),
    );
    const report = await diagnose(parseTarget(path), { schema: socialV2 });
    expect(report.plan?.steps.map((s) => `${s.action} ${s.table}`)).toEqual(['set_null posts', 'delete_rows reactions', 'delete_rows posts']);
    const result = await repair(parseTarget(path), report, { schema: socialV2, yes: true });
    expect(result.after?.healthy).toBe(true);
    expect(rowsOf(path, 'SELECT id, reply_to_id FROM posts ORDER BY id')).toEqual([
      { id: 'p_ann', reply_to_id: null },
      { id: 'p_reply', reply_to_id: null },
    ]);
    expect(rowsOf(path, 'SELECT id FROM reactions')).toEqual([]);
  });

  it('a key a table lost is left to a rebuild of the file, while its orphans are still repaired', async () => {
    // An older app rebuilt messages without its key to conversations, then wrote a message into nowhere.
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) =>
      db.exec(`CREATE TABLE messages_new (id TEXT NOT NULL PRIMARY KEY, conversation_id TEXT NOT NULL, author_id TEXT NOT NULL, body TEXT NOT NULL,
                 CONSTRAINT "author" FOREIGN KEY ("author_id") REFERENCES "profiles" ("id") DEFERRABLE INITIALLY IMMEDIATE) STRICT;
               INSERT INTO messages_new SELECT id, conversation_id, author_id, body FROM messages;
               DROP TABLE messages; ALTER TABLE messages_new RENAME TO messages;
               INSERT INTO messages (id, conversation_id, author_id, body) VALUES ('m_lost', 'c_gone', 'u_ann', '?');`),
    );
    const target = parseTarget(path);
    const report = await diagnose(target, { schema: socialV1 });
    expect(find(report, 'missing_key')[0]?.details).toMatchObject({ key: { name: 'messages_conversation_id_fkey' }, repairable: false });
    expect(orphanTexts(report)).toEqual([`messages.conversation_id = 'c_gone' has no conversations.id`]);
    // Only the rebuilt table is flagged: the engine's own tables declare every key DEFERRABLE INITIALLY DEFERRED.
    expect(find(report, 'key_not_deferrable').map((f) => f.details)).toEqual([
      { key: { name: 'messages_author_id_fkey', table: 'messages', columns: ['author_id'], refTable: 'profiles', refColumns: ['id'] }, deferrable: true, initiallyDeferred: false, repairable: false },
    ]);
    const todo = 'recreate the file: once the app has pushed its pending mutations, signOut({ wipe: true }) and bind again, so the engine builds the file from the schema and resyncs it';
    expect(report.plan?.manual.map((m) => m.subject).sort()).toEqual(['key messages.author_id -> profiles.id (to make it DEFERRABLE INITIALLY DEFERRED)', 'key messages.conversation_id -> conversations.id']);
    expect(renderReport(report)).toContain(`  - ${todo}, for: key messages.`);

    const result = await repair(target, report, { schema: socialV1, yes: true });
    expect(result.applied).toBe(true);
    expect(rowsOf(path, 'SELECT id FROM messages')).toEqual([{ id: 'm_ann' }]);
    expect(result.after?.findings.filter((f) => f.severity === 'problem').map((f) => f.code).sort()).toEqual(['key_not_deferrable', 'missing_key']);
    expect(exitCodeOf(result)).toBe(1);
  });

  it("S4: the bound owner's identity row is missing; the repair recreates it and keeps the owner's rows", async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) => db.exec(`DELETE FROM profiles WHERE id = 'u_ann'`));
    const target = parseTarget(path);
    const report = await diagnose(target, { schema: socialV1 });
    expect(find(report, 'missing_identity_row')[0]?.details).toMatchObject({ table: 'profiles', column: 'id', userIds: ['u_ann'], source: 'device_owner' });
    expect(orphanTexts(report)).toEqual([
      `conversations.owner_id = 'u_ann' has no profiles.id`,
      `messages.author_id = 'u_ann' has no profiles.id`,
      `posts.owner_id = 'u_ann' has no profiles.id`,
    ]);
    // The owner is a real user: their rows stay, their identity row comes back.
    expect(report.plan?.steps.map((s) => s.display)).toEqual([`INSERT INTO "profiles" ("id") VALUES ('u_ann') ON CONFLICT ("id") DO NOTHING`]);

    const result = await repair(target, report, { schema: socialV1, yes: true });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(rowsOf(path, 'SELECT id, name, bio FROM profiles')).toEqual([{ id: 'u_ann', name: '', bio: null }]);
    expect(rowsOf(path, 'SELECT id FROM posts')).toEqual([{ id: 'p_ann' }]);
    expect(find(await restored(result.backup, path), 'missing_identity_row')).toHaveLength(1);
  });

  it('S5: a key declared on a column the table does not have is reported as drift and repaired; the engine then opens the file', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) => db.exec(stampedVersion2));
    const target = parseTarget(path);
    const report = await diagnose(target, { schema: socialV2 });
    const [drift] = find(report, 'key_on_missing_column');
    expect(drift?.message).toBe('posts.reply_to_id -> posts.id is declared in the schema, but posts has no column reply_to_id; `dovetail doctor --fix` adds the column with its key');
    expect(find(report, 'missing_column')[0]?.details).toMatchObject({ table: 'posts', column: 'reply_to_id', repairable: true });
    // Without a schema module, the snapshot the engine stored tells the same.
    expect(find(await diagnose(target), 'key_on_missing_column')[0]?.details.missingColumns).toEqual(['reply_to_id']);
    expect(report.plan?.steps.map((s) => s.display)).toEqual([`ALTER TABLE "posts" ADD COLUMN "reply_to_id" TEXT REFERENCES "posts" ("id") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED`]);

    const result = await repair(target, report, { schema: socialV2, yes: true });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    const backupOfRepaired = `${path}.repaired`;
    copyFileSync(path, backupOfRepaired);
    expect(rowsOf(result.backup ?? '', `SELECT count(*) AS n FROM pragma_table_info('posts') WHERE name = 'reply_to_id'`)).toEqual([{ n: 0 }]);
    expect(find(await restored(result.backup, path, socialV2), 'key_on_missing_column')).toHaveLength(1);
    copyFileSync(backupOfRepaired, path);

    const client = createClient({ schema: socialV2, driver: nodeDriver({ directory: tmp.dir }) });
    const db = await client.bind({ userId: 'u_ann' });
    await db.mutate('reply', (m) => m.insert('posts', { id: 'p_reply', owner_id: 'u_ann', body: 're', reply_to_id: 'p_ann' }));
    await client.signOut();
  });

  it("reports the cursor's age against the retention, from the time the engine recorded its last pull", async () => {
    const day = 86_400_000;
    const now = Date.UTC(2026, 5, 1);
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) =>
      db.exec(`INSERT INTO _dovetail_meta (key, value) VALUES ('cursor', 'v1.${Buffer.from('10:12:').toString('base64url')}'), ('last_pull_at', '${now - 40 * day}')`),
    );
    const stale = await diagnose(parseTarget(path), { schema: socialV1, retentionMs: 30 * day, now: () => now });
    const [state] = find(stale, 'engine_state');
    expect(state?.severity).toBe('warning');
    expect(state?.details).toMatchObject({ cursorAgeKnown: true, cursorAgeMs: 40 * day, cursorSnapshot: '10:12:' });
    expect(state?.message).toMatch(/last pull was 40 days ago, longer than the 30 days retention: the next pull is answered with cursor_expired/);
    const fresh = await diagnose(parseTarget(path), { schema: socialV1, retentionMs: 60 * day, now: () => now });
    expect(find(fresh, 'engine_state')[0]?.severity).toBe('info');
  });

  it('a file one schema version behind the module is not drift: the app migrates it when it opens it', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, () => undefined);
    const report = await diagnose(parseTarget(path), { schema: socialV2 });
    expect(report.healthy).toBe(true);
    expect(report.summary.expected).toBe('device_snapshot');
    expect(find(report, 'not_checked')[0]?.message).toContain('the file is at schema version 1 and the schema module at 2');
    expect(find(report, 'key_on_missing_column')).toEqual([]);
  });

  it('a step that fails rolls back every step before it', async () => {
    const path = await deviceFile(tmp.dir, 'u_ann', socialV1, (db) =>
      db.exec(`${stampedVersion2}
               INSERT INTO posts (id, owner_id, body) VALUES ('p_old', 'u_old', 'x');
               INSERT INTO reactions (id, post_id, owner_id, emoji) VALUES ('r_old', 'p_old', 'u_ann', '+1');`),
    );
    const target = parseTarget(path);
    const report = await diagnose(target, { schema: socialV2 });
    expect(report.plan?.steps.map((s) => s.action)).toEqual(['delete_rows', 'delete_rows', 'add_column']);
    // Someone adds the column between the diagnosis and the repair: step 3 fails.
    writeWithKeysOff(path, 'ALTER TABLE posts ADD COLUMN reply_to_id TEXT');

    const result = await repair(target, report, { schema: socialV2, yes: true });
    expect(result.applied).toBe(false);
    expect(result.failed).toMatchObject({ step: 3, description: 'add column posts.reply_to_id with its key to posts.id' });
    expect(result.failed?.error).toContain('duplicate column');
    expect(exitCodeOf(result)).toBe(1);
    expect(renderRepair(result)).toContain('Everything was rolled back');
    expect(rowsOf(path, 'SELECT id FROM posts ORDER BY id')).toEqual([{ id: 'p_ann' }, { id: 'p_old' }]);
    expect(rowsOf(path, 'SELECT id FROM reactions')).toEqual([{ id: 'r_old' }]);
    expect(orphanTexts(result.after as DoctorReport)).toEqual([`posts.owner_id = 'u_old' has no profiles.id`]);

    // A plan edited by hand that deletes a parent still in use: the keys are deferred, so the check before COMMIT names the rows, and nothing changes.
    const step = { number: 1, action: 'delete_rows' as const, table: 'profiles', description: 'delete the profile of u_ann', sql: 'DELETE FROM profiles WHERE id = ?', params: ['u_ann'], display: '' };
    const edited = { ...report, plan: { dialect: 'sqlite' as const, manual: [], steps: [step] } };
    const broken = await repair(target, edited, { schema: socialV2, yes: true });
    expect(broken.failed).toMatchObject({ step: 2, description: 'check every key before COMMIT (PRAGMA foreign_key_check)' });
    expect(broken.failed?.error).toContain(`posts.owner_id = 'u_ann' has no profiles.id`);
    expect(rowsOf(path, 'SELECT id FROM profiles')).toEqual([{ id: 'u_ann' }]);
  });
});

describe('doctor on any SQLite file', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('checks the keys the file declares, with progress through a large table', async () => {
    const path = join(tmp.dir, 'app.sqlite');
    writeWithKeysOff(
      path,
      `CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
       CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors (id), editor_id INTEGER REFERENCES authors (id));
       INSERT INTO authors VALUES (1, 'a');
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) INSERT INTO books SELECT i, 1, NULL FROM n;
       UPDATE books SET author_id = 7 WHERE id IN (5, 149999);
       UPDATE books SET editor_id = 9 WHERE id = 6;`,
    );
    const events: DoctorProgress[] = [];
    const report = await diagnose(parseTarget(path), { onProgress: (e) => events.push(e), maxListed: 1 });
    expect(report.summary.expected).toBe('none');
    const byKey = new Map(find(report, 'orphan_rows').map((f) => [f.details.key.columns[0], f.details]));
    expect(byKey.get('author_id')).toMatchObject({ count: 2, rows: [{ id: '5', values: [7], text: 'books.author_id = 7 has no authors.id' }] });
    expect(byKey.get('editor_id')).toMatchObject({ count: 1, nullable: true });
    expect(renderReport(report)).toContain('and 1 more');
    const scans = events.filter((e): e is Extract<DoctorProgress, { phase: 'scan' }> => e.phase === 'scan' && e.table === 'books');
    expect(scans.map((e) => e.rowsChecked)).toEqual([0, 100000, 150000, 0, 100000, 150000]);
    expect(scans.every((e) => e.rowsEstimate === 150000)).toBe(true);
    expect(report.plan?.steps.map((s) => s.action)).toEqual(['delete_rows', 'set_null']);

    const result = await repair(parseTarget(path), report, { yes: true });
    expect(result.after?.healthy).toBe(true);
    expect(rowsOf(path, 'SELECT count(*) AS n, count(editor_id) AS e FROM books')).toEqual([{ n: 149998, e: 0 }]);
  });

  it('names a column the schema declares unique that the file does not enforce (a partial unique index does not count)', async () => {
    const handles = defineSchema({
      version: 1,
      identity: 'users',
      tables: { users: table({ columns: { id: text().primaryKey(), handle: text().nullable().unique() }, owner: 'id', visibility: 'public' }) },
    });
    const loose = join(tmp.dir, 'loose.db');
    writeWithKeysOff(loose, "CREATE TABLE users (id TEXT PRIMARY KEY, handle TEXT); CREATE UNIQUE INDEX users_some_handles ON users (handle) WHERE handle <> ''");
    const report = await diagnose(parseTarget(loose), { schema: handles });
    expect(find(report, 'missing_unique')).toEqual([expect.objectContaining({ severity: 'problem', details: { table: 'users', column: 'handle' } })]);
    expect(find(report, 'missing_unique')[0]?.message).toContain('rebuild the table');
    expect(report.healthy).toBe(false);
    const strict = join(tmp.dir, 'strict.db');
    writeWithKeysOff(strict, 'CREATE TABLE users (id TEXT PRIMARY KEY, handle TEXT UNIQUE)');
    expect(find(await diagnose(parseTarget(strict), { schema: handles }), 'missing_unique')).toEqual([]);
  });

  it('warns when a file declares no keys at all', async () => {
    const path = join(tmp.dir, 'loose.db');
    writeWithKeysOff(path, 'CREATE TABLE a (id TEXT PRIMARY KEY); CREATE TABLE b (id TEXT PRIMARY KEY, a_id TEXT)');
    const report = await diagnose(parseTarget(path));
    expect(report.healthy).toBe(true);
    expect(find(report, 'keys_not_enforced')[0]).toMatchObject({ severity: 'warning', details: { reason: 'no_keys_declared' } });
  });

  it('exits 2 when it cannot run: a missing file, a file that is not a database, a directory', async () => {
    const missing = join(tmp.dir, 'nope.db');
    expect(() => parseTarget(missing)).toThrow(DoctorError);
    expect(() => parseTarget(tmp.dir)).toThrow(/is not a file/);
    const thrown = await diagnose({ kind: 'sqlite', path: missing }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(DoctorError);
    expect(exitCodeOf(thrown)).toBe(2);

    const text = join(tmp.dir, 'notes.txt');
    writeFileSync(text, 'this is not a database, just some notes that are long enough to have a header\n'.repeat(20));
    const notDb = await diagnose(parseTarget(text)).catch((e: unknown) => e);
    expect((notDb as DoctorError).reason).toBe('not_a_database');
    expect((notDb as DoctorError).message).toContain('is not a SQLite database');
    expect(exitCodeOf(notDb)).toBe(2);
    expect(exitCodeOf(new Error('anything else'))).toBe(2);
  });
});
