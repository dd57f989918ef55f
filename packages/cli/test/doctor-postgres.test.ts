import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defineSchema, table, text } from '@dovetail/schema';
import type { Schema } from '@dovetail/schema';
import { DoctorError, diagnose, exitCodeOf, parseTarget, renderReport, renderRepair, repair } from '../src/doctor/mod.js';
import type { DiagnoseOptions, DoctorProgress, DoctorReport, DoctorTarget, Finding, FindingOf } from '../src/doctor/mod.js';
import { socialV1, socialV2 } from './support/doctor-schema.js';
import { createTables, openPgServer, runScript } from './support/doctor-postgres.js';
import type { PgServer, PgWorld } from './support/doctor-postgres.js';
import { tempDir } from './support/doctor-sqlite.js';

const orphanTexts = (report: DoctorReport): string[] =>
  report.findings.flatMap((f) => (f.code === 'orphan_rows' ? f.details.rows.map((r) => r.text) : [])).sort();

const find = <C extends Finding['code']>(report: DoctorReport, code: C): FindingOf<C>[] => report.findings.filter((f): f is FindingOf<C> => f.code === code);

const U1 = '00000000-0000-4000-8000-000000000001';
const U2 = '00000000-0000-4000-8000-000000000002';
const U3 = '00000000-0000-4000-8000-000000000003';

describe('doctor on Postgres', () => {
  let server: PgServer;
  let world: PgWorld;
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    server = await openPgServer();
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    world = await server.fresh();
    tmp = tempDir();
  });
  afterEach(async () => {
    await world.close();
    tmp.cleanup();
  });

  const target = (): DoctorTarget => ({ kind: 'postgres', sql: world.sql });
  const options = (schema: Schema): DiagnoseOptions => ({ schema, authSchema: world.authSchema });
  const run = async (statements: string): Promise<void> => {
    for (const s of statements.split(';').map((x) => x.trim())) if (s !== '') await world.sql.query(s);
  };
  const ids = async (table: 'posts' | 'reactions' | 'messages' | 'members' | 'profiles'): Promise<string[]> =>
    (await world.sql.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`)).map((r) => r.id);

  it('S1: posts whose owner key was dropped: orphans named even without the key, deleted after their reactions, key restored; the backup undoes it', async () => {
    await createTables(world, socialV1);
    await run(`ALTER TABLE posts DROP CONSTRAINT posts_owner_id_fkey;
      INSERT INTO profiles (id) VALUES ('u_ann');
      INSERT INTO posts (id, owner_id, body) VALUES ('p_ann', 'u_ann', 'hi'), ('p_old', 'u_old', 'x'), ('p_unknown', 'unknown', 'y');
      INSERT INTO reactions (id, post_id, owner_id, emoji) VALUES ('r_old', 'p_old', 'u_ann', '+1')`);
    const events: DoctorProgress[] = [];
    const report = await diagnose(target(), { ...options(socialV1), onProgress: (e) => events.push(e) });

    expect(exitCodeOf(report)).toBe(1);
    expect(orphanTexts(report)).toEqual([`posts.owner_id = 'u_old' has no profiles.id`, `posts.owner_id = 'unknown' has no profiles.id`]);
    expect(find(report, 'orphan_rows')[0]?.details.keyInDatabase).toBe(false);
    expect(find(report, 'missing_key')[0]?.message).toBe(
      'posts.owner_id -> profiles.id is declared in the schema but not in the database, so nothing stops orphan rows; `dovetail doctor --fix` adds it after repairing the orphans',
    );
    expect(events.some((e) => e.phase === 'scan' && e.table === 'posts')).toBe(true);
    expect(report.plan?.steps.map((s) => `${s.action} ${s.table}`)).toEqual(['delete_rows reactions', 'delete_rows posts', 'check_keys ', 'add_key posts', 'validate_key posts']);
    expect(renderReport(report)).toContain('ALTER TABLE "posts" ADD CONSTRAINT "posts_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "profiles" ("id") ON DELETE NO ACTION DEFERRABLE INITIALLY DEFERRED NOT VALID;');

    const result = await repair(target(), report, { ...options(socialV1), yes: true, backupDir: tmp.dir });
    expect(result.failed).toBeUndefined();
    expect(result.steps.map((s) => s.rows)).toEqual([1, 2, 0, 0, 0]);
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(await ids('posts')).toEqual(['p_ann']);
    await expect(world.sql.query(`INSERT INTO posts (id, owner_id, body) VALUES ('p_new', 'u_nobody', 'z')`)).rejects.toMatchObject({ code: '23503' });

    const backup = result.backup ?? '';
    expect(backup.startsWith(tmp.dir)).toBe(true);
    expect(readFileSync(backup, 'utf8')).toContain(`INSERT INTO "posts" SELECT * FROM jsonb_populate_record(NULL::"posts", '{"id": "p_old"`);
    await runScript(world.sql, backup);
    const restored = await diagnose(target(), options(socialV1));
    expect(orphanTexts(restored)).toEqual(orphanTexts(report));
    expect(await ids('reactions')).toEqual(['r_old']);
    expect(find(restored, 'missing_key')).toHaveLength(1);
  });

  it('S3: messages whose conversation key was never created are named and deleted; the key is added', async () => {
    await createTables(world, socialV1, { withoutKeys: ['messages_conversation_id_fkey'] });
    await run(`INSERT INTO profiles (id) VALUES ('u_ann');
      INSERT INTO conversations (id, owner_id) VALUES ('c_1', 'u_ann');
      INSERT INTO messages (id, conversation_id, author_id, body) VALUES ('m_1', 'c_1', 'u_ann', 'a'), ('m_2', 'c_gone', 'u_ann', 'b'), ('m_3', 'c_gone', 'u_ann', 'c')`);
    const report = await diagnose(target(), options(socialV1));
    expect(orphanTexts(report)).toEqual([`messages.conversation_id = 'c_gone' has no conversations.id`, `messages.conversation_id = 'c_gone' has no conversations.id`]);
    expect(find(report, 'orphan_rows')[0]?.details.rows.map((r) => r.id)).toEqual(['m_2', 'm_3']);
    expect(report.plan?.steps.map((s) => s.action)).toEqual(['delete_rows', 'check_keys', 'add_key', 'validate_key']);

    const result = await repair(target(), report, { ...options(socialV1), yes: true, backupDir: tmp.dir });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(await ids('messages')).toEqual(['m_1']);
    await runScript(world.sql, result.backup ?? '');
    expect(await ids('messages')).toEqual(['m_1', 'm_2', 'm_3']);
  });

  it('S4: an auth user without a profile gets one (named from auth), and rows pointing at them stay', async () => {
    await createTables(world, socialV1, { withoutKeys: ['members_user_id_fkey'] });
    await run(`CREATE TABLE ${world.authSchema}.users (id uuid PRIMARY KEY, email text, raw_user_meta_data jsonb, deleted_at timestamptz);
      INSERT INTO ${world.authSchema}.users (id, email, raw_user_meta_data, deleted_at) VALUES
        ('${U1}', 'ann@example.com', '{}', NULL), ('${U2}', 'bea@example.com', '{"full_name": "Bea"}', NULL), ('${U3}', 'gone@example.com', '{}', now());
      INSERT INTO profiles (id, name) VALUES ('${U1}', 'Ann');
      INSERT INTO conversations (id, owner_id) VALUES ('c_1', '${U1}');
      INSERT INTO members (id, conversation_id, user_id) VALUES ('mb_1', 'c_1', '${U1}'), ('mb_2', 'c_1', '${U2}')`);
    const report = await diagnose(target(), options(socialV1));
    const [missing] = find(report, 'missing_identity_row');
    expect(missing?.details).toMatchObject({ table: 'profiles', userIds: [U2], count: 1, source: 'auth_users' });
    expect(missing?.message).toContain(`1 user of ${world.authSchema}.users has no row in profiles (such as '${U2}')`);
    expect(orphanTexts(report)).toEqual([`members.user_id = '${U2}' has no profiles.id`]);
    expect(find(report, 'orphan_rows')[0]?.message).toContain('creates the missing profiles row they point at, so they stay');
    expect(report.plan?.steps.map((s) => s.action)).toEqual(['create_identity_row', 'check_keys', 'add_key', 'validate_key']);

    const result = await repair(target(), report, { ...options(socialV1), yes: true, backupDir: tmp.dir });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    expect(await world.sql.query(`SELECT id, name FROM profiles ORDER BY id`)).toEqual([
      { id: U1, name: 'Ann' },
      { id: U2, name: 'Bea' },
    ]);
    expect(await ids('members')).toEqual(['mb_1', 'mb_2']);
    await runScript(world.sql, result.backup ?? '');
    expect(await ids('profiles')).toEqual([U1]);
    expect(find(await diagnose(target(), options(socialV1)), 'missing_identity_row')).toHaveLength(1);
  });

  it('S5: a key declared on a column the table does not have is reported as drift; the column and its key are added', async () => {
    await createTables(world, socialV1);
    await run(`INSERT INTO profiles (id) VALUES ('u_ann'); INSERT INTO posts (id, owner_id, body) VALUES ('p_1', 'u_ann', 'hi')`);
    const report = await diagnose(target(), options(socialV2));
    expect(find(report, 'key_on_missing_column')[0]?.message).toBe(
      'posts.reply_to_id -> posts.id is declared in the schema, but posts has no column reply_to_id; `dovetail doctor --fix` adds the column with its key',
    );
    expect(find(report, 'missing_column')[0]?.details).toMatchObject({ table: 'posts', column: 'reply_to_id', repairable: true });
    expect(report.plan?.steps.map((s) => s.display)).toEqual([
      'ALTER TABLE "posts" ADD COLUMN "reply_to_id" text',
      'ALTER TABLE "posts" ADD CONSTRAINT "posts_reply_to_id_fkey" FOREIGN KEY ("reply_to_id") REFERENCES "posts" ("id") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED NOT VALID',
      'CREATE INDEX IF NOT EXISTS "posts_reply_to_id_idx" ON "posts" ("reply_to_id")',
      'ALTER TABLE "posts" VALIDATE CONSTRAINT "posts_reply_to_id_fkey"',
    ]);

    const result = await repair(target(), report, { ...options(socialV2), yes: true, backupDir: tmp.dir });
    expect(result.after?.healthy).toBe(true);
    expect(exitCodeOf(result)).toBe(0);
    await world.sql.query(`INSERT INTO posts (id, owner_id, body, reply_to_id) VALUES ('p_2', 'u_ann', 're', 'p_1')`);
    await expect(world.sql.query(`INSERT INTO posts (id, owner_id, body, reply_to_id) VALUES ('p_3', 'u_ann', 're', 'p_none')`)).rejects.toMatchObject({ code: '23503' });
    await world.sql.query(`DELETE FROM posts WHERE id = 'p_2'`);
    await runScript(world.sql, result.backup ?? '');
    expect(find(await diagnose(target(), options(socialV2)), 'key_on_missing_column')).toHaveLength(1);
  });

  it('keys left NOT VALID, not deferrable or with disabled triggers, and a disabled capture trigger, are repaired', async () => {
    await createTables(world, socialV1, { withoutKeys: ['posts_owner_id_fkey'] });
    await run(`INSERT INTO profiles (id) VALUES ('u_ann');
      INSERT INTO posts (id, owner_id, body) VALUES ('p_1', 'u_ann', 'a'), ('p_2', 'u_gone', 'b');
      ALTER TABLE posts ADD CONSTRAINT posts_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES profiles (id) NOT VALID;
      ALTER TABLE reactions DISABLE TRIGGER ALL`);
    const report = await diagnose(target(), options(socialV1));
    expect(find(report, 'key_not_validated').map((f) => f.details.key.name)).toEqual(['posts_owner_id_fkey']);
    expect(find(report, 'key_not_deferrable')[0]?.details).toMatchObject({ deferrable: false, repairable: true });
    expect(find(report, 'keys_not_enforced').map((f) => f.details.key?.name).sort()).toEqual(['reactions_owner_id_fkey', 'reactions_post_id_fkey']);
    expect(find(report, 'missing_capture_trigger')[0]?.details).toEqual({ table: 'reactions', present: true });
    expect(orphanTexts(report)).toEqual([`posts.owner_id = 'u_gone' has no profiles.id`]);
    // Without a schema module the keys come from the catalog: the same orphan, the same unvalidated key.
    const bare = await diagnose(target(), { authSchema: world.authSchema });
    expect(bare.summary.expected).toBe('none');
    expect(orphanTexts(bare)).toEqual([`posts.owner_id = 'u_gone' has no profiles.id`]);
    expect(find(bare, 'key_not_validated')).toHaveLength(1);

    const result = await repair(target(), report, { ...options(socialV1), yes: true, backupDir: tmp.dir });
    expect(result.failed).toBeUndefined();
    expect(result.after?.healthy).toBe(true);
    await runScript(world.sql, result.backup ?? '');
    const restored = await diagnose(target(), options(socialV1));
    expect(orphanTexts(restored)).toEqual(orphanTexts(report));
    expect(find(restored, 'key_not_deferrable')).toHaveLength(1);
  });

  it('names a column the schema declares unique that the database does not enforce, and leaves it to migrate', async () => {
    const handles = defineSchema({
      version: 1,
      identity: 'users',
      tables: { users: table({ columns: { id: text().primaryKey(), handle: text().nullable().unique() }, owner: 'id', visibility: 'public' }) },
    });
    await run('CREATE TABLE users (id text PRIMARY KEY, handle text)');
    const report = await diagnose(target(), { schema: handles });
    expect(find(report, 'missing_unique')).toEqual([expect.objectContaining({ severity: 'problem', details: { table: 'users', column: 'handle' } })]);
    expect(find(report, 'missing_unique')[0]?.message).toContain('run `dovetail migrate`');
    await run('ALTER TABLE users ADD UNIQUE (handle)');
    expect(find(await diagnose(target(), { schema: handles }), 'missing_unique')).toEqual([]);
  });

  it('a step that fails rolls back every step before it, and leaves no backup', async () => {
    await createTables(world, socialV1);
    await run(`ALTER TABLE posts DROP CONSTRAINT posts_owner_id_fkey;
      INSERT INTO profiles (id) VALUES ('u_ann');
      INSERT INTO posts (id, owner_id, body) VALUES ('p_old', 'u_old', 'x');
      INSERT INTO reactions (id, post_id, owner_id, emoji) VALUES ('r_old', 'p_old', 'u_ann', '+1')`);
    const report = await diagnose(target(), options(socialV1));
    expect(report.plan?.steps.map((s) => s.action)).toEqual(['delete_rows', 'delete_rows', 'check_keys', 'add_key', 'validate_key']);
    // Someone adds the key (unvalidated) between the diagnosis and the repair: step 4 fails.
    await run('ALTER TABLE posts ADD CONSTRAINT posts_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES profiles (id) NOT VALID');

    const result = await repair(target(), report, { ...options(socialV1), yes: true, backupDir: tmp.dir });
    expect(result.applied).toBe(false);
    expect(result.failed?.step).toBe(4);
    expect(result.failed?.error).toContain('already exists');
    expect(exitCodeOf(result)).toBe(1);
    expect(renderRepair(result)).toContain('Everything was rolled back');
    expect(await ids('posts')).toEqual(['p_old']);
    expect(await ids('reactions')).toEqual(['r_old']);
    expect(result.backup).toBeUndefined();
    expect(readdirSync(tmp.dir)).toEqual([]);
  });
});

describe('doctor cannot run', () => {
  it('exits 2 for an unreachable server and a URL that is not one', async () => {
    const unreachable = await diagnose(parseTarget('postgres://postgres@127.0.0.1:1/nothing')).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(DoctorError);
    expect((unreachable as DoctorError).reason).toBe('unreachable');
    expect(exitCodeOf(unreachable)).toBe(2);
    const badUrl = (() => {
      try {
        return parseTarget('postgresql://user:secret@[::1');
      } catch (e) {
        return e;
      }
    })();
    expect((badUrl as DoctorError).reason).toBe('bad_url');
    expect((badUrl as DoctorError).message).not.toContain('secret');
    expect(() => parseTarget('mysql://localhost/db')).toThrow(/neither a file nor a Postgres URL/);
    expect(existsSync('postgres:')).toBe(false);
  });
});
