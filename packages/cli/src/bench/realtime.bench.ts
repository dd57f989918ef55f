/**
 * Guards realtime: a write on one device must show up in the database of
 * another device of the same user within a few tens of milliseconds, with
 * many devices connected.
 *
 * - sync.realtime: 100 bound devices with pokes on and real timers: 20
 *   writer/reader pairs (two devices of the same user) and 60 idle devices
 *   of other users, all with an open poke WebSocket. One sample: a writer
 *   calls `mutate()` (one task into its user's project) and does nothing
 *   else; its runner syncs after its write delay (the default, 0 ms), the
 *   server pokes, the reader pulls. The sample ends when a live query on
 *   the reader's database (`db.watch`, watching for that row) delivers it.
 *   Samples run one at a time, round-robin over the pairs; p50 and p99 in ms.
 *
 *   Limit, the physical floor on this machine: the same row through the
 *   shortest path that still crosses the same pieces: one statement on the
 *   server's database that inserts it (into a copy of the table without
 *   the engine's triggers) and sends it as a NOTIFY payload, received by a
 *   LISTENing connection (the same `Sql`: `pg` pool or PGlite), parsed and
 *   inserted into a raw SQLite file with the engine's pragmas and DDL. So:
 *   one round trip, one durable commit, one notification, one SQLite
 *   write; no HTTP, no auth, no pull, no write delay. It is measured with
 *   the server up but no device connected (half before the devices bind,
 *   half after they sign out), so it is the machine's floor and not the
 *   engine's load.
 *
 *   Targets (absolute): p50 < 20 ms, p99 < 100 ms. The ratio is printed too.
 *
 * The progress output breaks every engine sample into its phases (write
 * delay, push, until the reader's pull starts, the pull, apply to delivery)
 * and counts the pulls the devices make, to show where the time goes.
 */
import type Sqlite from 'better-sqlite3';
import { systemTimers } from '@dovetail/client';
import type { Benchmark, BenchContext, Measurement } from './harness.js';
import { median, percentile } from './harness.js';
import { createBenchWorld, networkFailures, newProbe, openRawSqlite, sqliteInsert, syncSchema, until } from './world.js';
import type { BenchDevice, BenchWorld, TransportProbe } from './world.js';

const PAIRS = 20;
const IDLE = 60;
const DEVICES = 2 * PAIRS + IDLE;
const WARMUP_SAMPLES = 5;
/** Samples, round-robin over the pairs: up to SAMPLES, but no longer than SAMPLE_BUDGET_MS once MIN_SAMPLES are in. */
const SAMPLES = 200;
const MIN_SAMPLES = 20;
const SAMPLE_BUDGET_MS = 45_000;
const LIMIT_WARMUP = 20;
const LIMIT_SAMPLES = 200;
/** Longest wait for the requests of the previous sample to drain before the next one starts. */
const SETTLE_MAX_MS = 200;
const SAMPLE_TIMEOUT_MS = 30_000;
const NOTIFY_CHANNEL = 'bench_realtime_floor';

const userOf = (p: number): string => `rt-user-${String(p).padStart(2, '0')}`;
const projectOf = (p: number): string => `rt-project-${String(p).padStart(2, '0')}`;

interface Pair {
  readonly writer: BenchDevice;
  readonly reader: BenchDevice;
  readonly project: string;
}

interface ProbeEvent {
  readonly device: string;
  readonly kind: 'push-start' | 'push-end' | 'pull-start' | 'pull-end' | 'poke';
  readonly at: number;
  readonly changes: number;
}

/** Records what every device's transport does, and counts requests and pokes. */
function recordingProbe(): { probe: TransportProbe; events: ProbeEvent[]; counts: { pulls: number; pokes: number } } {
  const events: ProbeEvent[] = [];
  const counts = { pulls: 0, pokes: 0 };
  const probe = newProbe();
  const add = (device: string, kind: ProbeEvent['kind'], at: number, changes = 0): void => void events.push({ device, kind, at, changes });
  probe.onPushStart = (d, at) => add(d, 'push-start', at);
  probe.onPushEnd = (d, at) => add(d, 'push-end', at);
  probe.onPullStart = (d, at) => add(d, 'pull-start', at);
  probe.onPullEnd = (d, at, changes) => {
    counts.pulls++;
    add(d, 'pull-end', at, changes);
  };
  probe.onPoke = (d, at) => {
    counts.pokes++;
    add(d, 'poke', at);
  };
  return { probe, events, counts };
}

async function seed(world: BenchWorld): Promise<void> {
  for (const schema of [undefined, world.rawSchema]) {
    const t = (name: string): string => (schema ? `"${schema}"."${name}"` : `"${name}"`);
    await world.sql.transaction(async (tx) => {
      for (let p = 0; p < PAIRS; p++) {
        await tx.query(`INSERT INTO ${t('users')} (id, name) VALUES ($1, $2)`, [userOf(p), userOf(p)]);
        await tx.query(`INSERT INTO ${t('projects')} (id, owner_id, title) VALUES ($1, $2, $3)`, [projectOf(p), userOf(p), `project of ${userOf(p)}`]);
      }
    });
  }
}

// ------------------------------------------------------------------ limit

interface Floor {
  sample(id: string, project: string, rank: number): Promise<number>;
  close(): Promise<void>;
}

/** INSERT ... RETURNING + pg_notify in one statement; the listener writes the row into raw SQLite. */
async function openFloor(world: BenchWorld, directory: string): Promise<Floor> {
  const sqlite: Sqlite.Database = openRawSqlite(directory);
  sqlite.exec('BEGIN IMMEDIATE');
  for (let p = 0; p < PAIRS; p++) {
    sqlite.prepare('INSERT INTO "users" ("id", "name") VALUES (?, ?)').run(userOf(p), userOf(p));
    sqlite.prepare('INSERT INTO "projects" ("id", "owner_id", "title") VALUES (?, ?, ?)').run(projectOf(p), userOf(p), `project of ${userOf(p)}`);
  }
  sqlite.exec('COMMIT');
  const tasks = syncSchema.table('tasks');
  const insert = sqliteInsert(tasks);
  const stmt = sqlite.prepare(insert.sql);
  const waiting = new Map<string, (at: number) => void>();
  const unlisten = await world.sql.listen(NOTIFY_CHANNEL, (payload) => {
    const row = JSON.parse(payload) as Record<string, unknown>;
    stmt.run(...insert.values(row));
    waiting.get(String(row['id']))?.(performance.now());
  });
  const statement =
    `WITH ins AS (INSERT INTO "${world.rawSchema}"."tasks" ("id", "project_id", "title", "rank") VALUES ($1, $2, $3, $4) RETURNING *) ` +
    `SELECT pg_notify('${NOTIFY_CHANNEL}', row_to_json(ins)::text) FROM ins`;
  return {
    async sample(id, project, rank) {
      const arrived = new Promise<number>((resolve) => waiting.set(id, resolve));
      const t0 = performance.now();
      await world.sql.query(statement, [id, project, `realtime task ${rank}`, rank]);
      const at = await arrived;
      waiting.delete(id);
      return at - t0;
    },
    async close() {
      await unlisten();
      const n = (sqlite.prepare('SELECT count(*) AS n FROM "tasks"').get() as { n: number }).n;
      const broken = (sqlite.pragma('foreign_key_check') as unknown[]).length;
      sqlite.close();
      if (n !== LIMIT_WARMUP + LIMIT_SAMPLES || broken > 0) throw new Error(`the floor's SQLite holds ${n} tasks (expected ${LIMIT_WARMUP + LIMIT_SAMPLES}) and ${broken} broken keys`);
    },
  };
}

async function floorSamples(floor: Floor, from: number, count: number, out: number[] | undefined): Promise<void> {
  for (let k = from; k < from + count; k++) {
    const ms = await floor.sample(`floor-${k}`, projectOf(k % PAIRS), k);
    out?.push(ms);
  }
}

// ----------------------------------------------------------------- engine

/** One engine sample: resolves with the latency in ms and the phases, from the probe's events. */
async function engineSample(pair: Pair, id: string, rank: number, events: ProbeEvent[]): Promise<{ ms: number; phases: Record<string, number> }> {
  // The reader's live query for the row, running before the clock starts.
  let resolveSeen: (at: number) => void = () => undefined;
  const seen = new Promise<number>((resolve) => (resolveSeen = resolve));
  let first!: () => void;
  const subscribed = new Promise<void>((resolve) => (first = resolve));
  const stop = pair.reader.db.watch<{ id: string }>('SELECT "id" FROM "tasks" WHERE "id" = ?', [id], {
    tables: ['tasks'],
    onData: (rows) => {
      first();
      if (rows.length > 0) resolveSeen(performance.now());
    },
  });
  try {
    await subscribed;
    events.length = 0;
    const t0 = performance.now();
    await pair.writer.db.mutate('addTask', (m) => m.insert('tasks', { id, project_id: pair.project, title: `realtime task ${rank}`, rank }));
    const written = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const at = await Promise.race([
      seen,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`sample ${id}: the reader did not see the row within ${SAMPLE_TIMEOUT_MS} ms`)), SAMPLE_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    return { ms: at - t0, phases: phasesOf(pair, events, t0, written, at) };
  } finally {
    stop();
  }
}

/** Splits a sample into its phases, from the probe's events (NaN where an event is missing). */
function phasesOf(pair: Pair, events: readonly ProbeEvent[], t0: number, written: number, seenAt: number): Record<string, number> {
  const find = (device: string, kind: ProbeEvent['kind'], after: number, pred: (e: ProbeEvent) => boolean = () => true): ProbeEvent | undefined =>
    events.find((e) => e.device === device && e.kind === kind && e.at >= after && pred(e));
  const pushStart = find(pair.writer.name, 'push-start', written)?.at ?? Number.NaN;
  const pushEnd = find(pair.writer.name, 'push-end', pushStart)?.at ?? Number.NaN;
  // The reader's pull that brought the row: the first one after the push started that carried changes.
  const pullEnd = find(pair.reader.name, 'pull-end', pushStart, (e) => e.changes > 0)?.at ?? Number.NaN;
  const pullStart = [...events].reverse().find((e) => e.device === pair.reader.name && e.kind === 'pull-start' && e.at <= pullEnd)?.at ?? Number.NaN;
  const poke = find(pair.reader.name, 'poke', pushStart)?.at ?? Number.NaN;
  return {
    mutate: written - t0,
    'write delay': pushStart - written,
    push: pushEnd - pushStart,
    'poke after push end': poke - pushEnd,
    'reader pull starts after push end': pullStart - pushEnd,
    'reader pull': pullEnd - pullStart,
    'apply + live query': seenAt - pullEnd,
  };
}

/** Waits until no request is in flight for a moment, at most SETTLE_MAX_MS. */
async function settle(probe: TransportProbe): Promise<void> {
  const end = performance.now() + SETTLE_MAX_MS;
  let quietSince = performance.now();
  while (performance.now() < end) {
    if (probe.inFlight > 0) quietSince = performance.now();
    else if (performance.now() - quietSince >= 20) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const realtime: Benchmark = {
  name: 'sync.realtime',
  guards: `latency from a write on one device to the row in another device's database, with ${DEVICES} devices connected, against INSERT + NOTIFY to a listener + one SQLite insert`,
  metrics: [
    { name: 'sync.realtime.p50', unit: 'ms', better: 'lower', absolute: 20 },
    { name: 'sync.realtime.p99', unit: 'ms', better: 'lower', absolute: 100 },
  ],
  async run(ctx: BenchContext): Promise<Measurement[]> {
    const directory = ctx.tempDir('realtime');
    const world = await createBenchWorld(directory);
    let floor: Floor | undefined;
    const devices: BenchDevice[] = [];
    try {
      ctx.note(`server database: ${world.description}`);
      await seed(world);
      floor = await openFloor(world, ctx.tempDir('realtime-floor'));
      const floorMs: number[] = [];
      ctx.log(`limit: ${LIMIT_WARMUP} warm-up and ${LIMIT_SAMPLES / 2} samples before the devices connect`);
      await floorSamples(floor, 0, LIMIT_WARMUP, undefined);
      await floorSamples(floor, LIMIT_WARMUP, LIMIT_SAMPLES / 2, floorMs);

      const { probe, events, counts } = recordingProbe();
      const synced = new Set<string>();
      const recordPullEnd = probe.onPullEnd;
      probe.onPullEnd = (d, at, changes) => {
        synced.add(d);
        recordPullEnd?.(d, at, changes);
      };
      ctx.log(`binding ${DEVICES} devices (pokes on, real timers): ${PAIRS} writer/reader pairs and ${IDLE} idle devices`);
      const pairs: Pair[] = [];
      const options = { pokes: true, timers: systemTimers, probe };
      for (let p = 0; p < PAIRS; p++) {
        const writer = await world.device(`rt-writer-${p}`, userOf(p), options);
        const reader = await world.device(`rt-reader-${p}`, userOf(p), options);
        devices.push(writer, reader);
        pairs.push({ writer, reader, project: projectOf(p) });
      }
      for (let i = 0; i < IDLE; i++) devices.push(await world.device(`rt-idle-${i}`, `rt-idle-user-${i}`, options));
      await until(() => world.server.pokes.size === DEVICES, `${DEVICES} poke channels`, 60_000);
      await until(() => synced.size === DEVICES, 'every device to finish a first pull', 120_000);
      await new Promise((r) => setTimeout(r, 500));

      // With no writes at all, how busy are the devices?
      events.length = 0;
      const idleFrom = { pulls: counts.pulls, pokes: counts.pokes };
      await new Promise((r) => setTimeout(r, 1000));
      ctx.log(`with nothing written for 1 s: ${counts.pulls - idleFrom.pulls} pulls and ${counts.pokes - idleFrom.pokes} pokes (${world.server.pokes.size} devices connected)`);

      const engineMs: number[] = [];
      const phases: Record<string, number[]> = {};
      const failedBefore = networkFailures.length;
      const measureFrom = { pulls: counts.pulls, pokes: counts.pokes, at: performance.now() };
      for (let k = 0; k < WARMUP_SAMPLES + SAMPLES; k++) {
        const measured = k >= WARMUP_SAMPLES;
        if (k === WARMUP_SAMPLES) Object.assign(measureFrom, { pulls: counts.pulls, pokes: counts.pokes, at: performance.now() });
        if (engineMs.length >= MIN_SAMPLES && performance.now() - measureFrom.at > SAMPLE_BUDGET_MS) {
          ctx.log(`stopping at ${engineMs.length} samples: the time budget of ${SAMPLE_BUDGET_MS / 1000} s is spent`);
          break;
        }
        const pair = pairs[k % PAIRS] as Pair;
        await settle(probe);
        const sample = await engineSample(pair, `rt-${k}`, k, events);
        if (!measured) continue;
        engineMs.push(sample.ms);
        for (const [name, ms] of Object.entries(sample.phases)) (phases[name] ??= []).push(ms);
        if (engineMs.length % 25 === 0) ctx.log(`${engineMs.length} samples, p50 so far ${median(engineMs).toFixed(1)} ms`);
      }
      const seconds = (performance.now() - measureFrom.at) / 1000;
      ctx.log(`${engineMs.length} samples in ${seconds.toFixed(1)} s${engineMs.length < 100 ? ' (fewer than 100: p99 is the slowest sample or close to it)' : ''}`);
      ctx.log(`while sampling: ${Math.round((counts.pulls - measureFrom.pulls) / seconds)} pulls/s and ${Math.round((counts.pokes - measureFrom.pokes) / seconds)} pokes/s over ${DEVICES} devices`);
      if (networkFailures.length > failedBefore) ctx.log(`${networkFailures.length - failedBefore} requests failed on the network while sampling (the runners retried after their backoff), e.g. ${networkFailures.at(-1) ?? ''}`);
      ctx.log('where a sample\'s time goes (median / p99, ms):');
      for (const [name, values] of Object.entries(phases)) {
        const finite = values.filter((v) => Number.isFinite(v));
        ctx.log(`  ${name.padEnd(34)} ${median(finite).toFixed(1).padStart(7)} / ${percentile(finite, 99).toFixed(1).padStart(7)}${finite.length < values.length ? ` (${values.length - finite.length} samples without this event)` : ''}`);
      }

      // Each sample waited for its row on the reader; the readers' keys must hold too.
      for (const pair of pairs) {
        if ((await pair.reader.db.foreignKeyCheck()).length > 0) throw new Error(`${pair.reader.name} has broken keys`);
      }
      await Promise.all(devices.map((d) => d.close()));
      devices.length = 0;

      ctx.log(`limit: ${LIMIT_SAMPLES / 2} more samples after the devices signed out`);
      await floorSamples(floor, LIMIT_WARMUP + LIMIT_SAMPLES / 2, LIMIT_SAMPLES / 2, floorMs);
      ctx.log(`limit p50 ${median(floorMs).toFixed(2)} ms, p99 ${percentile(floorMs, 99).toFixed(2)} ms`);
      await floor.close();
      floor = undefined;

      return [
        { name: 'sync.realtime.p50', value: percentile(engineMs, 50), limit: percentile(floorMs, 50) },
        { name: 'sync.realtime.p99', value: percentile(engineMs, 99), limit: percentile(floorMs, 99) },
      ];
    } finally {
      await Promise.all(devices.map((d) => d.close()));
      await floor?.close().catch(() => undefined);
      await world.close();
    }
  },
};

export const benchmarks: readonly Benchmark[] = [realtime];
