/**
 * Guards push throughput under concurrency: many devices pushing at once
 * must get their rows into Postgres about as fast as Postgres takes the
 * same rows in transactions of the same size.
 *
 * - sync.push: 20 bound devices of 20 different users, each with
 *   PER_DEVICE pending one-row mutations (an insert of a task into a
 *   project the user owns) in its outbox, all calling `syncNow()` at once,
 *   through the real HTTP server on loopback. Timed until every outbox is
 *   empty (pushed, applied, pulled back and finalized), in rows/s.
 *
 *   Limit: the same rows inserted straight into a copy of the tables (same
 *   DDL, in a private schema, no capture triggers), one row per
 *   transaction (BEGIN; INSERT; COMMIT): over 20 concurrent connections on
 *   real Postgres, over the one connection PGlite has otherwise.
 *
 *   Target: ratio >= 0.5.
 *
 * WARMUPS rounds of WARMUP_PER_DEVICE rows per device run first, on both
 * sides, and the tables are analyzed after them: the first thousands of
 * mutations run on cold code, and a freshly created database has no
 * statistics, which a database in service has. A server in service is
 * warm; after one warm-up round, V8 still compiled about 90 functions
 * during the measured rounds (`--trace-opt`), and the first measured
 * round spent up to 40% more CPU in this process than the second.
 *
 * The server runs on embedded PGlite unless DATABASE_URL is set (see
 * world.ts); the output says which.
 */
import type pg from 'pg';
import { quoteIdent as q } from '@dovetail/schema';
import type { Benchmark, BenchContext, Measurement } from './harness.js';
import { cpuMeter, describeCpu, median } from './harness.js';
import { createBenchWorld, newProbe, syncRetrying } from './world.js';
import type { BenchDevice, BenchWorld, TransportProbe } from './world.js';

const DEVICES = 20;
const PER_DEVICE = 200;
const WARMUP_PER_DEVICE = 100;
const ROUNDS = 2;
/** Warm-up rounds (rounds 1 - WARMUPS to 0), each of WARMUP_PER_DEVICE rows per device. */
const WARMUPS = 3;

const userOf = (d: number): string => `push-user-${String(d).padStart(2, '0')}`;
const projectOf = (d: number): string => `push-project-${String(d).padStart(2, '0')}`;

interface TaskRow {
  id: string;
  project_id: string;
  title: string;
  rank: number;
}

function rowsFor(label: string, device: number, n: number): TaskRow[] {
  return Array.from({ length: n }, (_, k) => ({ id: `${label}-${device}-${k}`, project_id: projectOf(device), title: `pushed task ${k} of device ${device}`, rank: k }));
}

/** Users and their projects, on the server (through the app tables) and in the raw copy. */
async function seed(world: BenchWorld): Promise<void> {
  for (const schema of [undefined, world.rawSchema]) {
    const t = (name: string): string => (schema ? `${q(schema)}.${q(name)}` : q(name));
    await world.sql.transaction(async (tx) => {
      for (let d = 0; d < DEVICES; d++) {
        await tx.query(`INSERT INTO ${t('users')} (id, name) VALUES ($1, $2)`, [userOf(d), userOf(d)]);
        await tx.query(`INSERT INTO ${t('projects')} (id, owner_id, title) VALUES ($1, $2, $3)`, [projectOf(d), userOf(d), `project of ${userOf(d)}`]);
      }
    });
  }
}

/** Puts `rows[d]` into device d's outbox, one mutation per row (before the clock starts). */
async function fillOutboxes(devices: readonly BenchDevice[], rows: readonly TaskRow[][]): Promise<void> {
  await Promise.all(
    devices.map(async (device, d) => {
      for (const row of rows[d] ?? []) await device.db.mutate('addTask', (m) => m.insert('tasks', row));
    }),
  );
}

/** Time each device spent in push and in pull requests during the last `pushAll`, by `device:kind`. */
const requestMs: Record<string, number> = {};

function timingProbe(): TransportProbe {
  const probe = newProbe();
  const started = new Map<string, number>();
  const start = (kind: string) => (device: string, at: number): void => void started.set(`${device}:${kind}`, at);
  const end = (kind: string) => (device: string, at: number): void => {
    const key = `${device}:${kind}`;
    requestMs[key] = (requestMs[key] ?? 0) + at - (started.get(key) ?? at);
  };
  probe.onPushStart = start('push');
  probe.onPushEnd = end('push');
  probe.onPullStart = start('pull');
  probe.onPullEnd = end('pull');
  return probe;
}

/** Median over devices of the time in push requests and in pull requests. */
function requestSplit(): string {
  const of = (kind: string): number => median(Object.entries(requestMs).filter(([k]) => k.endsWith(`:${kind}`)).map(([, v]) => v));
  return `per device, median: ${Math.round(of('push'))} ms in push requests, ${Math.round(of('pull'))} ms in pull requests`;
}

/**
 * Every device syncs at once; each keeps syncing until its outbox is empty
 * (its timers are manual, so a sync that failed on the network is retried
 * here). Returns the elapsed ms.
 */
async function pushAll(devices: readonly BenchDevice[], log: (message: string) => void): Promise<number> {
  const t0 = performance.now();
  for (const key of Object.keys(requestMs)) delete requestMs[key];
  await Promise.all(
    devices.map(async (device) => {
      for (let attempt = 0; ; attempt++) {
        await syncRetrying(device, log);
        if ((await device.db.outboxDepth()) === 0) return;
        if (attempt > 100) throw new Error(`device ${device.name} still has ${await device.db.outboxDepth()} pending mutations after 100 syncs`);
      }
    }),
  );
  const ms = performance.now() - t0;
  for (const device of devices) {
    const rejected = await device.db.rejected();
    if (rejected.length > 0) throw new Error(`device ${device.name}: the server refused ${rejected.length} mutations, first: ${rejected[0]?.reason ?? ''} ${rejected[0]?.message ?? ''}`);
  }
  return ms;
}

/** The limit: one row per transaction, 20 connections on real Postgres, the one PGlite connection otherwise. */
async function rawInsertAll(world: BenchWorld, connections: readonly pg.Client[], rows: readonly TaskRow[][]): Promise<number> {
  const insert = `INSERT INTO ${q(world.rawSchema)}."tasks" ("id", "project_id", "title", "rank") VALUES ($1, $2, $3, $4)`;
  const values = (r: TaskRow): unknown[] => [r.id, r.project_id, r.title, r.rank];
  const t0 = performance.now();
  if (connections.length > 0) {
    await Promise.all(
      connections.map(async (c, d) => {
        for (const row of rows[d] ?? []) {
          await c.query('BEGIN');
          await c.query(insert, values(row));
          await c.query('COMMIT');
        }
      }),
    );
  } else {
    // PGlite: the 20 streams queue on its single connection, as the engine's requests do.
    await Promise.all(
      rows.map(async (deviceRows) => {
        for (const row of deviceRows) await world.sql.transaction((tx) => tx.query(insert, values(row)));
      }),
    );
  }
  return performance.now() - t0;
}

async function count(world: BenchWorld, table: string, prefix: string): Promise<number> {
  const rows = await world.sql.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table} WHERE id LIKE $1`, [`${prefix}-%`]);
  return Number(rows[0]?.n);
}

export const push: Benchmark = {
  name: 'sync.push',
  guards: `push throughput of ${DEVICES} devices syncing at once, each with ${PER_DEVICE} one-row mutations, against the same rows inserted one per transaction over ${DEVICES} connections`,
  metrics: [{ name: 'sync.push.throughput', unit: 'rows/s', better: 'higher', target: 0.5 }],
  async run(ctx: BenchContext): Promise<Measurement[]> {
    const world = await createBenchWorld(ctx.tempDir('push'), { poolMax: DEVICES });
    const connections: pg.Client[] = [];
    try {
      ctx.note(`server database: ${world.description}`);
      ctx.note(
        world.kind === 'postgres'
          ? `limit: one-row transactions over ${DEVICES} concurrent connections; the server's pool has ${DEVICES}`
          : 'limit: one-row transactions on the single PGlite connection (the engine shares it too)',
      );
      await seed(world);
      if (world.kind === 'postgres') for (let d = 0; d < DEVICES; d++) connections.push(await world.connect());

      ctx.log(`binding ${DEVICES} devices and running their first sync`);
      const devices: BenchDevice[] = [];
      const probe = timingProbe();
      for (let d = 0; d < DEVICES; d++) devices.push(await world.device(`push-${d}`, userOf(d), { probe }));
      await Promise.all(devices.map((device) => syncRetrying(device, (message) => ctx.log(message))));

      const engineMs: number[] = [];
      const rawMs: number[] = [];
      let engineRows = 0;
      let rawRows = 0;
      for (let round = 1 - WARMUPS; round <= ROUNDS; round++) {
        const measured = round > 0;
        const n = measured ? PER_DEVICE : WARMUP_PER_DEVICE;
        const label = measured ? `round ${round} of ${ROUNDS}` : 'warm-up';
        const engineSide = async (): Promise<void> => {
          const rows = devices.map((_, d) => rowsFor(`e${round}`, d, n));
          await fillOutboxes(devices, rows);
          const cpu = cpuMeter();
          const ms = await pushAll(devices, (message) => ctx.log(message));
          const spent = describeCpu(cpu());
          engineRows += DEVICES * n;
          if (measured) engineMs.push(ms);
          ctx.log(`${label}: engine ${DEVICES} x ${n} rows in ${Math.round(ms)} ms (${Math.round((DEVICES * n) / (ms / 1000))} rows/s; ${requestSplit()}; ${spent})`);
        };
        const rawSide = async (): Promise<void> => {
          const rows = devices.map((_, d) => rowsFor(`r${round}`, d, n));
          const cpu = cpuMeter();
          const ms = await rawInsertAll(world, connections, rows);
          const spent = describeCpu(cpu());
          rawRows += DEVICES * n;
          if (measured) rawMs.push(ms);
          ctx.log(`${label}: raw    ${DEVICES} x ${n} rows in ${Math.round(ms)} ms (${Math.round((DEVICES * n) / (ms / 1000))} rows/s; ${spent})`);
        };
        if ((round + WARMUPS) % 2 === 0) {
          await engineSide();
          await rawSide();
        } else {
          await rawSide();
          await engineSide();
        }
        // Statistics, as autovacuum keeps them on a database that has run
        // for more than a minute (its tables here are seconds old).
        if (round === 0) await world.sql.query('ANALYZE');
      }

      // Every row arrived, on the server and back on its device; nothing else did.
      let serverRows = 0;
      for (let round = 1 - WARMUPS; round <= ROUNDS; round++) serverRows += await count(world, 'tasks', `e${round}`);
      let rawCount = 0;
      for (let round = 1 - WARMUPS; round <= ROUNDS; round++) rawCount += await count(world, `${q(world.rawSchema)}."tasks"`, `r${round}`);
      if (serverRows !== engineRows || rawCount !== rawRows) throw new Error(`expected ${engineRows} pushed and ${rawRows} raw rows, found ${serverRows} and ${rawCount}`);
      for (const device of devices) {
        const held = (await device.db.query<{ n: number }>('SELECT count(*) AS n FROM "tasks"'))[0]?.n;
        if (held !== engineRows / DEVICES) throw new Error(`device ${device.name} holds ${String(held)} tasks, expected ${engineRows / DEVICES}`);
        if ((await device.db.foreignKeyCheck()).length > 0) throw new Error(`device ${device.name} has broken keys`);
      }

      const perSecond = (ms: number): number => (DEVICES * PER_DEVICE) / (ms / 1000);
      return [{ name: 'sync.push.throughput', value: perSecond(median(engineMs)), limit: perSecond(median(rawMs)) }];
    } finally {
      await Promise.all(connections.map((c) => c.end().catch(() => undefined)));
      await world.close();
    }
  },
};

export const benchmarks: readonly Benchmark[] = [push];
