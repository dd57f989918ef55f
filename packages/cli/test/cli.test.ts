import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, httpTransport } from '@dovetail/client';
import type { DovetailClient, Timers } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import type { Change, PullResponse } from '@dovetail/protocol';
import type { Sql } from '@dovetail/server';
import { repostId } from '../../../apps/postr/src/ids.js';
import { exampleSchema } from '../../../examples/schema.js';
import type { DoctorReport, RepairResult } from '../src/doctor/mod.js';
import type { MigrationPlan, MigrationStatus } from '@dovetail/server';
import { socialV1 } from './support/doctor-schema.js';
import { deviceFile, rowsOf } from './support/doctor-sqlite.js';
import { killAll, privateDatabase, REPO_ROOT, runCli, startCli, tempDir } from './support/run-cli.js';
import type { CliResult, TestDatabase } from './support/run-cli.js';

/**
 * The `dovetail` binary as a user meets it: each test spawns
 * `node packages/cli/bin/dovetail.js ...` from the repository root and
 * checks the exit code and what lands on stdout and stderr.
 *
 * Serve, dev and migrate get a database of their own from
 * `privateDatabase`: a private schema of DATABASE_URL when it is set (CI),
 * else an embedded Postgres data directory (and no DATABASE_URL in the
 * child's environment).
 */

const FIXTURES = 'packages/cli/test/fixtures';
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'packages/cli/package.json'), 'utf8')) as { version: string }).version;
const SECRET = 'cli-test-secret-long-enough-for-hs256-signing';

/** Everything a finished run printed, for assertion messages. */
const shown = (run: CliResult): string => `exit ${String(run.code)}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;

/** The JSON log lines a server printed, parsed. */
const logLines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

afterAll(killAll);

describe.concurrent('help and version', () => {
  it('dovetail --help lists every command and exits 0', async ({ expect }) => {
    const run = await runCli(['--help']);
    expect(run.code, shown(run)).toBe(0);
    for (const [name, summary] of [
      ['serve', 'run the sync server'],
      ['dev', 'demo data and demo tokens'],
      ['migrate', 'plan, apply or check schema changes'],
      ['doctor', 'diagnose (and repair)'],
      ['bench', 'run the benchmarks'],
    ] as const) {
      expect(run.stdout).toMatch(new RegExp(`^  ${name} +.*${summary.replace(/[()]/g, '\\$&')}`, 'm'));
    }
    expect(run.stdout).toContain('usage: dovetail <command> [options]');
    expect(run.stdout).toContain('Exit codes: 0 fine, 1 problems found, 2 could not run.');
    expect(run.stderr).toBe('');
  });

  it('dovetail serve --help lists every option with its environment variable, and never echoes a secret', async ({ expect }) => {
    const secret = 'a-secret-that-help-must-never-print-0123456789';
    const run = await runCli(['serve', '--help'], { env: { JWT_SECRET: secret } });
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toContain('usage: dovetail serve --schema <path> [options]');
    const options: [string, string | undefined][] = [
      ['--schema <path>', 'DOVETAIL_SCHEMA'],
      ['--database-url <url>', 'DATABASE_URL'],
      ['--data-dir <dir>', 'DOVETAIL_DATA_DIR'],
      ['--port <port>', 'PORT'],
      ['--host <host>', 'HOST'],
      ['--jwt-secret <secret>', 'JWT_SECRET'],
      ['--jwks-url <url>', 'DOVETAIL_JWKS_URL'],
      ['--retention <duration>', 'DOVETAIL_RETENTION'],
      ['--help', undefined],
    ];
    const lines = run.stdout.split('\n').filter((l) => /^ {2}--/.test(l));
    expect(lines.map((l) => l.trim().split(/ {2,}/)[0])).toEqual(options.map(([flag]) => flag));
    for (const [flag, env] of options) {
      const line = lines.find((l) => l.trim().startsWith(`${flag} `)) ?? '';
      if (env) expect(line, flag).toMatch(new RegExp(`\\(env ${env}\\b`));
    }
    expect(run.stdout).toContain('(env PORT, default 8787)');
    expect(run.stdout).not.toContain(secret);
    expect(run.stderr).toBe('');
  });

  it('dovetail --version prints the version of @dovetail/cli', async ({ expect }) => {
    const run = await runCli(['--version']);
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toBe(`${VERSION}\n`);
    expect(run.stderr).toBe('');
  });

  it('bare dovetail prints the help and exits 2', async ({ expect }) => {
    const run = await runCli([]);
    expect(run.code, shown(run)).toBe(2);
    expect(run.stdout).toContain('usage: dovetail <command> [options]');
    expect(run.stdout).toMatch(/^ {2}serve +/m);
  });
});

describe.concurrent('mistakes: exit 2 with what to do, and nothing on stdout', () => {
  let scratch: ReturnType<typeof tempDir>;
  beforeAll(() => {
    scratch = tempDir();
  });
  afterAll(() => scratch.remove());

  /** A run refused before doing anything: exit 2, stdout empty, each part on stderr, no stack trace. */
  const refused = (run: CliResult, ...parts: string[]): void => {
    expect(run.code, shown(run)).toBe(2);
    expect(run.stdout, shown(run)).toBe('');
    for (const part of parts) expect(run.stderr, shown(run)).toContain(part);
    expect(run.stderr).not.toContain('unexpected failure');
    expect(run.stderr).not.toMatch(/^\s+at /m);
  };

  it('a misspelled option is named, with the option meant', async () => {
    const run = await runCli(['serve', '--shema', 'x']);
    refused(run, "unknown option --shema for 'dovetail serve'", 'did you mean --schema?', 'dovetail serve --help');
  });

  it('an unknown command is named, with the command meant', async () => {
    const run = await runCli(['serv']);
    refused(run, "unknown command 'serv'", "did you mean 'dovetail serve'?", 'the commands are serve, dev, migrate, doctor, bench');
  });

  it('a schema module path that does not exist names the path and the option; nothing is opened', async () => {
    const dataDir = join(scratch.dir, 'missing-schema-data');
    const run = await runCli(['serve', '--schema', `${FIXTURES}/no-such-schema.ts`, '--port', '0', '--data-dir', dataDir], { env: { JWT_SECRET: SECRET } });
    refused(run, `no schema module at ${join(REPO_ROOT, FIXTURES, 'no-such-schema.ts')}`, 'check the path given to --schema');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('a module that exports no schema says what it exports and how to export one', async () => {
    const dataDir = join(scratch.dir, 'no-schema-data');
    const run = await runCli(['migrate', 'plan', '--schema', `${FIXTURES}/not-a-schema.ts`, '--data-dir', dataDir]);
    refused(run, `${FIXTURES}/not-a-schema.ts exports no schema (it exports describeTables, tables)`, 'export const schema = defineSchema');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('--port abc is refused as not a number', async () => {
    const run = await runCli(['serve', '--schema', 'examples/schema.ts', '--port', 'abc'], { env: { JWT_SECRET: SECRET } });
    refused(run, "--port must be a number, got 'abc'", 'set --port to a number such as 8787');
  });

  it('migrate aply suggests apply', async () => {
    const run = await runCli(['migrate', 'aply', '--schema', 'examples/schema.ts']);
    refused(run, "unknown migrate action 'aply'", "did you mean 'apply'?", 'the actions are plan, apply and status');
  });

  it('doctor without a target asks for one', async () => {
    const run = await runCli(['doctor']);
    refused(run, 'doctor needs a target: a SQLite file, a postgres:// URL or an embedded Postgres data directory', "e.g. 'dovetail doctor ./app.db --schema ./schema.ts'");
  });

  it('doctor --yes without --fix says --fix is needed', async () => {
    const run = await runCli(['doctor', 'app.db', '--yes']);
    refused(run, '--yes applies a repair plan, but --fix was not given', "write 'doctor <target> --fix' to see the plan, then add --yes to apply it");
  });

  it('doctor on a file that does not exist exits 2', async () => {
    const missing = join(scratch.dir, 'nope.db');
    const run = await runCli(['doctor', missing]);
    refused(run, `no such file: ${missing}`, 'give the path of an existing SQLite file, or a postgres:// URL');
    expect(existsSync(missing)).toBe(false);
  });

  it('serve without JWT_SECRET or --jwks-url says how tokens could be checked', async () => {
    const run = await runCli(['serve', '--schema', 'examples/schema.ts', '--port', '0', '--data-dir', join(scratch.dir, 'no-secret-data')]);
    refused(run, 'no way to check tokens: neither --jwt-secret nor --jwks-url is set', 'set JWT_SECRET');
  });
});

/** Timers that never fire: the test syncs with `syncNow()`. */
const manualTimers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined };

const tokenFor = (user: string, secret: string): Promise<string> =>
  new SignJWT({ name: user.toUpperCase() }).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret));

describe('dovetail serve', () => {
  let db: TestDatabase;
  let scratch: ReturnType<typeof tempDir>;
  const clients: DovetailClient<typeof exampleSchema>[] = [];
  beforeAll(async () => {
    db = await privateDatabase('serve');
    scratch = tempDir();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.signOut().catch(() => undefined);
    await killAll();
  });
  afterAll(async () => {
    await db.drop();
    scratch.remove();
  });

  /** A device of `user` with its own directory, syncing with the server at `url`. */
  async function device(name: string, user: string, url: string) {
    const directory = join(scratch.dir, name);
    mkdirSync(directory);
    const client = createClient({ schema: exampleSchema, driver: nodeDriver({ directory }) });
    clients.push(client);
    const token = (): Promise<string> => tokenFor(user, SECRET);
    return client.bind({ userId: user, sync: { transport: httpTransport({ url }), getToken: token, refreshToken: token, timers: manualTimers } });
  }

  it('logs where it listens, syncs a project from one device to another, and stops on SIGTERM with exit 0', async () => {
    const server = startCli(['serve', '--schema', 'examples/schema.ts', '--port', '0', ...db.args], { env: { JWT_SECRET: SECRET } });
    const listening = await server.waitForLog('listening', 60_000);
    const url = String(listening['url']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(listening).toMatchObject({ level: 'info', schemaVersion: exampleSchema.version, tables: 4 });
    expect(String(listening['database'])).toMatch(db.kind === 'postgres' ? /^Postgres at / : /^embedded Postgres in /);

    const phone = await device('phone', 'ann', url);
    await phone.mutate('createProject', (m) => m.insert('projects', { id: 'p_kitchen', owner_id: 'ann', title: 'Kitchen' }));
    const pushed = await phone.sync.syncNow();
    expect(pushed.pushed).toBe(1);
    expect(pushed.rejected).toEqual([]);

    const laptop = await device('laptop', 'ann', url);
    await laptop.sync.syncNow();
    expect(await laptop.rows('projects')).toEqual([{ id: 'p_kitchen', owner_id: 'ann', title: 'Kitchen' }]);
    expect(await laptop.foreignKeyCheck()).toEqual([]);

    server.signal('SIGTERM');
    const end = await server.exit();
    expect(end.code, server.describe()).toBe(0);
    const logs = logLines(end.stdout);
    expect(logs.at(-1)).toMatchObject({ level: 'info', message: 'stopped' });
    expect(logs.filter((l) => l['level'] !== 'info'), 'no warnings or errors').toEqual([]);
    expect(end.stderr).toBe('');

    // The project is in the server's database (opened once the server let go of it).
    const sql = await db.open();
    try {
      expect(await sql.query('SELECT id, owner_id, title FROM projects')).toEqual([{ id: 'p_kitchen', owner_id: 'ann', title: 'Kitchen' }]);
    } finally {
      await sql.close();
    }
  }, 120_000);
});

describe('dovetail dev with Postr', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await privateDatabase('dev');
  });
  afterEach(killAll);
  afterAll(() => db.drop());

  it('seeds the demo, prints a token per demo user; a pull with Ann’s token finds the seeded posts; SIGINT stops it with exit 0', async () => {
    const dev = startCli(['dev', '--schema', 'apps/postr/src/schema.ts', '--seed', 'apps/postr/src/seed.ts', '--port', '0', ...db.args]);
    await dev.waitForLine('stderr', (l) => l.includes('Ctrl-C stops the server.'), 'the end of the banner', 60_000);
    const url = /Dovetail dev server on (http:\/\/127\.0\.0\.1:\d+)/.exec(dev.stderr)?.[1];
    expect(url, dev.describe()).toBeDefined();
    expect(dev.stderr).toContain('Tokens are signed with a secret made for this run');

    // "  Ann (ann):" then the token on the next line.
    const lines = dev.stderr.split('\n');
    const tokens = new Map<string, string>();
    lines.forEach((line, i) => {
      const user = /^ {2}\w+ \((\w+)\):$/.exec(line)?.[1];
      const token = lines[i + 1]?.trim();
      if (user && token) tokens.set(user, token);
    });
    expect([...tokens.keys()]).toEqual(['ann', 'bob', 'cy']);

    const pull = async (token: string): Promise<Change[]> => {
      const changes: Change[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 20; page++) {
        const response = await fetch(`${url ?? ''}/v1/pull`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ protocolVersion: 1, clientId: 'cli-test', schemaVersion: 1, cursor }),
        });
        expect(response.status, await response.clone().text()).toBe(200);
        const body = (await response.json()) as PullResponse;
        changes.push(...body.changes);
        if (!body.hasMore) return changes;
        cursor = body.cursor;
      }
      throw new Error('the pull never ended (hasMore after 20 pages)');
    };
    const idsOf = (changes: Change[], table: string): unknown[] => changes.flatMap((c) => (c.table === table && c.op === 'upsert' ? [c.row['id']] : [])).sort();

    const ann = await pull(tokens.get('ann') ?? '');
    expect(idsOf(ann, 'posts')).toEqual(['seed-bob-post', 'seed-bob-reply', 'seed-cy-quote', 'seed-hello', repostId('seed-hello', 'bob')].sort());
    expect(ann.find((c) => c.op === 'upsert' && c.row['id'] === 'seed-hello')).toMatchObject({ row: { author_id: 'ann', body: 'Hello from Postr! Foreign keys on, on every device.' } });
    expect(idsOf(ann, 'users')).toEqual(['ann', 'bob', 'cy']);
    expect(idsOf(ann, 'messages')).toEqual(['seed-m1', 'seed-m2', 'seed-m3']);
    expect(idsOf(ann, 'bookmarks')).toHaveLength(1);
    // Cy is in no conversation and bookmarked nothing: the seed goes through the same visibility rules.
    const cy = await pull(tokens.get('cy') ?? '');
    expect(idsOf(cy, 'posts')).toEqual(idsOf(ann, 'posts'));
    expect(idsOf(cy, 'messages')).toEqual([]);
    expect(idsOf(cy, 'bookmarks')).toEqual([]);

    // Ctrl-C in a terminal reaches the whole process group: the launcher and the server.
    dev.signalGroup('SIGINT');
    const end = await dev.exit();
    expect(end.code, dev.describe()).toBe(0);
    expect(logLines(end.stdout).at(-1)).toMatchObject({ message: 'stopped' });
  }, 120_000);
});

describe('dovetail migrate on a database with rows', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await privateDatabase('migrate');
  });
  afterEach(killAll);
  afterAll(() => db.drop());

  const migrate = (action: string, version: 'v1' | 'v2' | 'v3', ...extra: string[]): Promise<CliResult> =>
    runCli(['migrate', action, '--schema', `${FIXTURES}/schema-${version}.ts`, ...db.args, ...extra]);

  /** Opens the database in the test (the child has exited), runs `fn`, closes it. */
  async function withSql<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const sql = await db.open();
    try {
      return await fn(sql);
    } finally {
      await sql.close();
    }
  }

  const V2_STEPS = [
    'create_table:comments',
    'add_column:tasks.note',
    'add_foreign_key:tasks.tasks_project_id_fkey',
    'create_index:tasks.tasks_project_id_idx',
    'validate_foreign_key:tasks.tasks_project_id_fkey',
  ];
  const ROWS = {
    users: [
      { id: 'u_ann', name: 'Ann' },
      { id: 'u_bob', name: 'Bob' },
    ],
    projects: [
      { id: 'p_home', owner_id: 'u_ann', title: 'Home' },
      { id: 'p_work', owner_id: 'u_bob', title: 'Work' },
    ],
    // t_orphan points at a project that does not exist: v1 has no key on tasks.project_id.
    tasks: [
      { id: 't_orphan', owner_id: 'u_ann', project_id: 'p_gone', title: 'written by an older app' },
      { id: 't_paint', owner_id: 'u_ann', project_id: 'p_home', title: 'Paint the hall' },
      { id: 't_taxes', owner_id: 'u_bob', project_id: 'p_work', title: 'File taxes' },
    ],
  };

  it('apply with schema v1 creates the tables (exit 0)', async () => {
    const run = await migrate('apply', 'v1');
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toContain('Done: 4 step(s) applied; the database matches schema version 1.');
    expect(run.stderr).toContain(`dovetail migrate apply: ${db.kind === 'postgres' ? 'Postgres at' : 'embedded Postgres in'}`);
    expect(run.stderr).toMatch(/^ {2}applied {2}create_table:tasks \(\d+ ms\)$/m);

    await withSql(async (sql) => {
      for (const [table, rows] of Object.entries(ROWS)) {
        for (const row of rows) {
          const names = Object.keys(row);
          await sql.query(`INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
        }
      }
    });
  }, 120_000);

  it('plan with v2 prints each step with its SQL, the key NOT VALID then VALIDATE (exit 0); --json parses; status says what is pending (exit 1)', async () => {
    const plan = await migrate('plan', 'v2');
    expect(plan.code, shown(plan)).toBe(0);
    expect(plan.stdout).toContain('Plan to bring the database to schema version 2: 5 step(s), each in its own transaction.');
    const ids = [...plan.stdout.matchAll(/^ {2}\d+\. .*\[([a-z_]+:[^\]]+)\]$/gm)].map((m) => m[1]);
    expect(ids).toEqual(V2_STEPS);
    expect(plan.stdout).toContain('CREATE TABLE "comments"');
    expect(plan.stdout).toContain('ALTER TABLE "tasks" ADD COLUMN "note" text;');
    expect(plan.stdout).toContain(
      'ALTER TABLE "tasks" ADD CONSTRAINT "tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID;',
    );
    expect(plan.stdout).toContain('ALTER TABLE "tasks" VALIDATE CONSTRAINT "tasks_project_id_fkey";');
    expect(plan.stdout.indexOf('NOT VALID;')).toBeLessThan(plan.stdout.indexOf('VALIDATE CONSTRAINT'));
    expect(plan.stdout).toContain("Run 'dovetail migrate apply' to apply it.");

    const json = await migrate('plan', 'v2', '--json');
    expect(json.code, shown(json)).toBe(0);
    const parsed = JSON.parse(json.stdout) as MigrationPlan;
    expect(parsed.schemaVersion).toBe(2);
    expect(parsed.steps.map((s) => s.id)).toEqual(V2_STEPS);
    expect(parsed.steps.find((s) => s.kind === 'add_foreign_key')?.sql[0]).toMatch(/NOT VALID$/);
    expect(parsed.refused).toEqual([]);
    expect(json.stderr).toBe('');

    const status = await migrate('status', 'v2');
    expect(status.code, shown(status)).toBe(1);
    expect(status.stdout).toContain('Schema module: version 2. Database: last brought in line with version 1.');
    expect(status.stdout).toContain('Pending: 5 step(s).');
    // The four steps of v1, not counting the mark of version 1 reached.
    expect(status.stdout).toMatch(/^Applied steps: 4, the last at /m);
    for (const id of V2_STEPS) expect(status.stdout).toContain(`[${id}]`);
  }, 120_000);

  it('apply with v2 stops at the VALIDATE an orphan row fails (exit 1), names the step and points at the doctor; the key stays, NOT VALID', async () => {
    const run = await migrate('apply', 'v2');
    expect(run.code, shown(run)).toBe(1);
    expect(run.stdout).toContain('Step failed: Check the existing rows of tasks against key tasks_project_id_fkey');
    expect(run.stdout).toContain('[validate_foreign_key:tasks.tasks_project_id_fkey]');
    expect(run.stdout).toContain('Postgres said: 23503');
    expect(run.stdout).toContain('`dovetail doctor`');
    expect(run.stdout).toContain('4 earlier step(s) of this run stay applied; 1 step(s) remain.');
    expect(run.stdout).not.toContain('Done:');
    expect(run.stderr).toContain('  applying validate_foreign_key:tasks.tasks_project_id_fkey ...');

    await withSql(async (sql) => {
      expect(await sql.query(`SELECT convalidated FROM pg_constraint WHERE conname = 'tasks_project_id_fkey' AND connamespace = current_schema()::regnamespace`)).toEqual([{ convalidated: false }]);
      // NOT VALID still checks every new write.
      await expect(sql.query(`INSERT INTO tasks (id, owner_id, project_id, title) VALUES ('t_new', 'u_ann', 'p_nowhere', 'x')`)).rejects.toMatchObject({ code: '23503' });
    });
  }, 120_000);

  it('doctor on the server database (a URL, or the embedded data directory) names the orphan (exit 1)', async () => {
    const run = await runCli(['doctor', db.target, '--schema', `${FIXTURES}/schema-v2.ts`]);
    expect(run.code, shown(run)).toBe(1);
    expect(run.stdout).toContain("tasks.project_id = 'p_gone' has no projects.id");
  });

  it('once the orphan has its parent back, apply with v2 finishes (exit 0), status is in sync (exit 0), and every row is still there', async () => {
    await withSql((sql) => sql.query(`INSERT INTO projects (id, owner_id, title) VALUES ('p_gone', 'u_ann', 'Found again')`));
    const run = await migrate('apply', 'v2');
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toContain('Done: 1 step(s) applied; the database matches schema version 2.');

    const status = await migrate('status', 'v2', '--json');
    expect(status.code, shown(status)).toBe(0);
    const parsed = JSON.parse(status.stdout) as MigrationStatus;
    expect(parsed).toMatchObject({ recordedVersion: 2, schemaVersion: 2, inSync: true, pending: [], refused: [] });
    expect(parsed.history.map((h) => h.step)).toEqual(expect.arrayContaining(V2_STEPS));

    await withSql(async (sql) => {
      expect(await sql.query('SELECT id, name FROM users ORDER BY id')).toEqual(ROWS.users);
      expect(await sql.query('SELECT id, owner_id, title FROM projects ORDER BY id')).toEqual([...ROWS.projects, { id: 'p_gone', owner_id: 'u_ann', title: 'Found again' }].sort((a, b) => a.id.localeCompare(b.id)));
      expect(await sql.query('SELECT id, owner_id, project_id, title, note FROM tasks ORDER BY id')).toEqual(ROWS.tasks.map((t) => ({ ...t, note: null })));
      expect(await sql.query(`SELECT convalidated FROM pg_constraint WHERE conname = 'tasks_project_id_fkey' AND connamespace = current_schema()::regnamespace`)).toEqual([{ convalidated: true }]);
    });
  }, 120_000);

  it('doctor on the migrated server database finds it healthy (exit 0)', async () => {
    const run = await runCli(['doctor', db.target, '--schema', `${FIXTURES}/schema-v2.ts`]);
    expect(run.code, shown(run)).toBe(0);
    expect(run.stdout).toContain('Healthy: no problems found.');
  });

  it('v3 retypes a column: plan (exit 1) and apply (exit 1) name the refused change, and nothing changes', async () => {
    const before = await withSql((sql) => sql.query('SELECT count(*)::int AS n FROM _dovetail_migrations'));
    const plan = await migrate('plan', 'v3');
    expect(plan.code, shown(plan)).toBe(1);
    expect(plan.stdout).toContain('Refused (1): migrate only makes changes that keep every row.');
    expect(plan.stdout).toContain('tasks.title is text in the database but integer (bigint) in the schema');
    expect(plan.stdout).not.toContain("Run 'dovetail migrate apply'");

    const apply = await migrate('apply', 'v3');
    expect(apply.code, shown(apply)).toBe(1);
    expect(apply.stdout).toContain('migrate applied nothing');
    expect(apply.stdout).toContain('tasks.title is text in the database but integer (bigint) in the schema');
    expect(apply.stdout).toContain('What to do: Keep the column');
    expect(apply.stderr).not.toContain('applying');

    await withSql(async (sql) => {
      expect(await sql.query('SELECT count(*)::int AS n FROM _dovetail_migrations')).toEqual(before);
      expect(await sql.query(`SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'tasks' AND column_name = 'title'`)).toEqual([{ data_type: 'text' }]);
      expect(await sql.query('SELECT count(*)::int AS n FROM tasks')).toEqual([{ n: 3 }]);
    });
  }, 120_000);

});

describe('dovetail doctor on device files', () => {
  let scratch: ReturnType<typeof tempDir>;
  let broken: string;

  beforeAll(async () => {
    scratch = tempDir();
    mkdirSync(join(scratch.dir, 'broken'));
    // A post whose owner is unknown, written by an older app with keys off.
    broken = await deviceFile(join(scratch.dir, 'broken'), 'u_ann', socialV1, (raw) => raw.exec(`INSERT INTO posts (id, owner_id, body) VALUES ('p_old', 'u_old', 'from an earlier session')`));
  });
  afterEach(killAll);
  afterAll(() => scratch.remove());

  const doctor = (...args: string[]): Promise<CliResult> => runCli(['doctor', ...args, '--schema', `${FIXTURES}/doctor-schema.ts`]);
  const posts = (): unknown[] => rowsOf(broken, 'SELECT id FROM posts ORDER BY id');

  it('exits 0 on a healthy file, 1 on one with an orphan naming it; --json parses', async () => {
    mkdirSync(join(scratch.dir, 'healthy'));
    const healthy = await deviceFile(join(scratch.dir, 'healthy'), 'u_ann', socialV1, () => undefined);
    const [ok, bad, json] = await Promise.all([doctor(healthy), doctor(broken), doctor(broken, '--json')]);

    expect(ok.code, shown(ok)).toBe(0);
    expect(ok.stdout).toContain('Healthy: no problems found.');

    expect(bad.code, shown(bad)).toBe(1);
    expect(bad.stdout).toContain(`Dovetail doctor: ${broken} (SQLite)`);
    expect(bad.stdout).toContain("posts.owner_id = 'u_old' has no profiles.id  (row posts p_old)");
    // Without --fix, no plan: a pointer to it.
    expect(bad.stdout).not.toContain('Repair plan:');
    expect(bad.stdout).toContain('--fix shows a repair plan');
    // Progress names each key once.
    expect(bad.stderr).toContain('checking posts.owner_id -> profiles.id');
    expect(bad.stderr).not.toContain('posts.posts.');
    expect(bad.stdout).toContain('1 problem found.');

    expect(json.code, shown(json)).toBe(1);
    const report = JSON.parse(json.stdout) as DoctorReport;
    expect(report.healthy).toBe(false);
    expect(report.findings.flatMap((f) => (f.code === 'orphan_rows' ? f.details.rows.map((r) => r.text) : []))).toEqual(["posts.owner_id = 'u_old' has no profiles.id"]);
  }, 60_000);

  it('--fix prints the plan and changes nothing (exit 1); --fix --yes backs up and repairs (exit 0); a second run finds nothing (exit 0)', async () => {
    const fix = await doctor(broken, '--fix');
    expect(fix.code, shown(fix)).toBe(1);
    expect(fix.stdout).toContain('Repair plan: 2 steps, run in one transaction after a backup');
    expect(fix.stdout.split('Repair plan:')).toHaveLength(2);
    expect(fix.stdout).toContain('Nothing was changed. Add --yes');
    expect(fix.stdout).toContain('DELETE FROM "posts"');
    expect(fix.stdout).toContain('Nothing was changed');
    expect(posts()).toEqual([{ id: 'p_ann' }, { id: 'p_old' }]);
    expect(readdirSync(join(scratch.dir, 'broken')).filter((f) => f.includes('doctor-backup'))).toEqual([]);

    const yes = await doctor(broken, '--fix', '--yes', '--json');
    expect(yes.code, shown(yes)).toBe(0);
    const result = JSON.parse(yes.stdout) as { report: DoctorReport; repair: RepairResult };
    expect(result.repair.applied).toBe(true);
    expect(result.repair.after?.healthy).toBe(true);
    expect(result.repair.backup).toMatch(/\.doctor-backup-.*\.db$/);
    expect(existsSync(result.repair.backup ?? '')).toBe(true);
    expect(posts()).toEqual([{ id: 'p_ann' }]);
    expect(rowsOf(result.repair.backup ?? '', 'SELECT id FROM posts ORDER BY id')).toEqual([{ id: 'p_ann' }, { id: 'p_old' }]);

    const again = await doctor(broken);
    expect(again.code, shown(again)).toBe(0);
    expect(again.stdout).toContain('Healthy: no problems found.');
  }, 60_000);

});
