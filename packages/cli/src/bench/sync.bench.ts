/**
 * Guards the first sync: a freshly bound device must fill its empty SQLite
 * file from the server about as fast as the data can be read out of
 * Postgres and written into SQLite at all.
 *
 * - sync.first-sync: 100,000 rows over four key levels (users -> projects
 *   -> tasks, a third of them children of another task -> comments), all
 *   visible to one user, from the server's database into an empty device:
 *   the time of `db.sync.syncNow()` on a freshly bound device, through the
 *   real HTTP server on loopback. Engine side: everything the sync does
 *   (pull query with its visibility filter, JSON over HTTP, validation,
 *   upserts, outbox replay and finalize, cursor) in rows/s.
 *
 *   Limit: the same rows read with one plain `SELECT * FROM "table"` per
 *   table through the same `Sql` (the same driver: `pg` or PGlite), and
 *   written into an empty SQLite file made with the same DDL
 *   (`schema.sqliteDdl()`) and the same pragmas (WAL, synchronous=NORMAL,
 *   foreign_keys=ON), through one prepared INSERT per table in one
 *   transaction. No sync logic.
 *
 *   Targets: ratio >= 0.5 and at least 100,000 rows/s.
 *
 * The server runs on embedded PGlite unless DATABASE_URL is set (see
 * world.ts); the output says which.
 */
import type Sqlite from 'better-sqlite3';
import { quoteIdent as q } from '@dovetail/schema';
import type { Benchmark, BenchContext, Measurement } from './harness.js';
import { median } from './harness.js';
import { createBenchWorld, DDL_QUERY, newProbe, openRawSqlite, sqliteDdlOf, sqliteInsert, syncRetrying, syncSchema } from './world.js';
import type { BenchWorld } from './world.js';

/** The user whose first sync is measured; owns every project. */
const OWNER = 'u0000';
const USERS = 100;
const PROJECTS = 1_000;
const TASKS = 30_000;
const COMMENTS = 68_900;
const TOTAL = USERS + PROJECTS + TASKS + COMMENTS;
/** One warm-up round per side (JIT, caches), then the measured rounds, alternating which side goes first. */
const WARMUP = 1;
const ROUNDS = 3;

/**
 * The data, written straight into the server's tables. The capture
 * triggers are off while seeding (they only feed incremental pulls, which
 * this benchmark does not make; with them seeding takes 10-20 s). Task `i` with
 * `i % 3 == 2` is a child of task `i + 1000` when that exists (same
 * project, later id), so parents do not come first by id order.
 */
async function seed(world: BenchWorld): Promise<void> {
  const pad = (expr: string, width: number): string => `lpad((${expr})::text, ${width}, '0')`;
  const capture = (on: boolean) => async (): Promise<void> => {
    for (const t of syncSchema.syncedTables) await world.sql.query(`ALTER TABLE ${q(t.name)} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER _dovetail_capture`);
  };
  await capture(false)();
  await world.sql.transaction(async (tx) => {
    await tx.query(`INSERT INTO users (id, name) SELECT 'u' || ${pad('i', 4)}, 'user number ' || i FROM generate_series(0, ${USERS - 1}) i`);
    await tx.query(`INSERT INTO projects (id, owner_id, title) SELECT 'p' || ${pad('i', 5)}, '${OWNER}', 'project number ' || i FROM generate_series(0, ${PROJECTS - 1}) i`);
    await tx.query(
      `INSERT INTO tasks (id, project_id, parent_task_id, title, rank)
       SELECT 't' || ${pad('i', 6)}, 'p' || ${pad(`i % ${PROJECTS}`, 5)},
              CASE WHEN i % 3 = 2 AND i + ${PROJECTS} < ${TASKS} THEN 't' || ${pad(`i + ${PROJECTS}`, 6)} END,
              'task number ' || i || ', with a title of a realistic length', i
       FROM generate_series(0, ${TASKS - 1}) i`,
    );
    await tx.query(
      `INSERT INTO comments (id, task_id, author_id, body, created_at)
       SELECT 'c' || ${pad('i', 6)}, 't' || ${pad(`i % ${TASKS}`, 6)}, 'u' || ${pad(`i % ${USERS}`, 4)},
              'comment number ' || i || ': a short remark about the task, as people write them', 1700000000000 + i
       FROM generate_series(0, ${COMMENTS - 1}) i`,
    );
  }).finally(capture(true));
  // Statistics, as autovacuum would have them on a live server (PGlite has no autovacuum).
  await world.sql.query('ANALYZE');
  const counts = await world.sql.query<{ n: string | number }>(`SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM projects) + (SELECT count(*) FROM tasks) + (SELECT count(*) FROM comments) AS n`);
  if (Number(counts[0]?.n) !== TOTAL) throw new Error(`seeding wrote ${String(counts[0]?.n)} rows, expected ${TOTAL}`);
}

async function countOnDevice(query: (sql: string) => Promise<{ n: number }[]>): Promise<number> {
  let total = 0;
  for (const t of syncSchema.syncedTables) total += (await query(`SELECT count(*) AS n FROM ${q(t.name)}`))[0]?.n ?? 0;
  return total;
}

/**
 * A freshly bound device's first sync, timed from `syncNow()` to its end;
 * then checks it holds every row and no broken key. `pullMs` is the pull
 * request (server query, JSON both ways, HTTP, validation); the rest of
 * `ms` is mostly applying it to SQLite.
 */
async function engineRound(world: BenchWorld, name: string, log: (message: string) => void): Promise<{ ms: number; pullMs: number; ddl: string }> {
  const probe = newProbe();
  let pullStart = Number.NaN;
  let pullMs = Number.NaN;
  probe.onPullStart = (_device, at) => (pullStart = at);
  probe.onPullEnd = (_device, at) => (pullMs = at - pullStart);
  const device = await world.device(name, OWNER, { probe });
  try {
    if ((await device.db.query<{ n: number }>('SELECT count(*) AS n FROM "tasks"'))[0]?.n !== 0) throw new Error('the device is not empty before its first sync');
    const t0 = performance.now();
    const report = await syncRetrying(device, log);
    const ms = performance.now() - t0;
    if (report.pulled !== TOTAL) throw new Error(`the first sync pulled ${report.pulled} changes, expected ${TOTAL}`);
    const held = await countOnDevice((sql) => device.db.query<{ n: number }>(sql));
    if (held !== TOTAL) throw new Error(`the device holds ${held} rows after its first sync, expected ${TOTAL}`);
    if ((await device.db.foreignKeyCheck()).length > 0) throw new Error('the device has broken keys after its first sync');
    const ddl = sqliteDdlOf(await device.db.query<{ sql: string | null }>(DDL_QUERY));
    return { ms, pullMs, ddl };
  } finally {
    await device.client.signOut({ wipe: true }).catch(() => undefined);
    await device.close();
  }
}

/** The limit: a plain SELECT per table through the same `Sql`, then prepared INSERTs in one SQLite transaction. */
async function rawRound(world: BenchWorld, directory: string): Promise<{ ms: number; selectMs: number; ddl: string }> {
  const sqlite: Sqlite.Database = openRawSqlite(directory);
  try {
    const tables = syncSchema.syncedTables.map((t) => ({ t, insert: sqliteInsert(t) }));
    const statements = tables.map(({ insert }) => sqlite.prepare(insert.sql));
    const t0 = performance.now();
    const data: Record<string, unknown>[][] = [];
    for (const { t } of tables) data.push(await world.sql.query(`SELECT * FROM ${q(t.name)}`));
    const selectMs = performance.now() - t0;
    sqlite.exec('BEGIN IMMEDIATE');
    tables.forEach(({ insert }, i) => {
      const stmt = statements[i] as Sqlite.Statement;
      for (const row of data[i] ?? []) stmt.run(...insert.values(row));
    });
    sqlite.exec('COMMIT');
    const ms = performance.now() - t0;
    const held = await countOnDevice((sql) => Promise.resolve(sqlite.prepare(sql).all() as { n: number }[]));
    if (held !== TOTAL) throw new Error(`the raw database holds ${held} rows, expected ${TOTAL}`);
    if ((sqlite.pragma('foreign_key_check') as unknown[]).length > 0) throw new Error('the raw database has broken keys');
    return { ms, selectMs, ddl: sqliteDdlOf(sqlite.prepare(DDL_QUERY).all() as { sql: string | null }[]) };
  } finally {
    sqlite.close();
  }
}

export const firstSync: Benchmark = {
  name: 'sync.first-sync',
  guards: `a freshly bound device's first sync of ${TOTAL.toLocaleString('en-US')} rows (4 key levels, a self-reference) over HTTP, against plain SELECTs plus prepared SQLite inserts in one transaction`,
  metrics: [{ name: 'sync.first-sync.throughput', unit: 'rows/s', better: 'higher', target: 0.5, absolute: 100_000 }],
  async run(ctx: BenchContext): Promise<Measurement[]> {
    const world = await createBenchWorld(ctx.tempDir('first-sync'));
    try {
      ctx.note(`server database: ${world.description}`);
      ctx.log(`seeding ${TOTAL} rows (${USERS} users, ${PROJECTS} projects, ${TASKS} tasks, ${COMMENTS} comments)`);
      const seeded = performance.now();
      await seed(world);
      ctx.log(`seeded in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

      const engineMs: number[] = [];
      const rawMs: number[] = [];
      let engineDdl = '';
      let rawDdl = '';
      for (let round = 0; round < WARMUP + ROUNDS; round++) {
        const measured = round >= WARMUP;
        const label = measured ? `round ${round - WARMUP + 1} of ${ROUNDS}` : 'warm-up';
        const runEngine = async (): Promise<void> => {
          const r = await engineRound(world, `device-${round}`, (message) => ctx.log(message));
          engineDdl = r.ddl;
          if (measured) engineMs.push(r.ms);
          ctx.log(`${label}: engine ${Math.round(r.ms)} ms (${Math.round(TOTAL / (r.ms / 1000))} rows/s; pull request ${Math.round(r.pullMs)} ms, the rest ${Math.round(r.ms - r.pullMs)} ms)`);
        };
        const runRaw = async (): Promise<void> => {
          const r = await rawRound(world, ctx.tempDir(`first-sync-raw-${round}`));
          rawDdl = r.ddl;
          if (measured) rawMs.push(r.ms);
          ctx.log(`${label}: raw    ${Math.round(r.ms)} ms (${Math.round(TOTAL / (r.ms / 1000))} rows/s; SELECTs ${Math.round(r.selectMs)} ms, SQLite inserts ${Math.round(r.ms - r.selectMs)} ms)`);
        };
        if (round % 2 === 0) {
          await runEngine();
          await runRaw();
        } else {
          await runRaw();
          await runEngine();
        }
      }
      if (engineDdl !== rawDdl) throw new Error(`the synced tables differ between the device and the raw database:\n${engineDdl}\n---\n${rawDdl}`);
      const perSecond = (ms: number): number => TOTAL / (ms / 1000);
      return [{ name: 'sync.first-sync.throughput', value: perSecond(median(engineMs)), limit: perSecond(median(rawMs)) }];
    } finally {
      await world.close();
    }
  },
};

export const benchmarks: readonly Benchmark[] = [firstSync];
