/**
 * Guards the local write path: `db.mutate()` must stay close to what SQLite
 * itself can do on this machine.
 *
 * - mutate.single-row: latency of a one-row mutation (an insert into a child
 *   table whose parent exists), p50 and p99, against the same row written
 *   straight through better-sqlite3 with the same transaction shape
 *   (BEGIN IMMEDIATE; INSERT; COMMIT). Target: p50 ratio >= 0.33.
 * - mutate.bulk-10k: throughput of one 10,000-row mutation, against the same
 *   10,000 rows inserted through one prepared statement in one transaction.
 *   Target: ratio >= 0.5.
 *
 * Both sides are file databases with WAL, synchronous=NORMAL and foreign keys
 * on, and the same DDL (see fixture.ts). The engine also writes its outbox
 * row in the same transaction and runs its checks and bookkeeping; that is
 * exactly the overhead these benchmarks measure.
 */
import type Sqlite from 'better-sqlite3';
import type { Benchmark, BenchContext, Measurement } from './harness.js';
import { median, percentile } from './harness.js';
import { checkSides, INSERT_TASK_SQL, openEngine, openRaw, taskRow } from './fixture.js';
import type { EngineSide, TaskRow } from './fixture.js';

// ----------------------------------------------------------- single row

const SINGLE_WARMUP = 200;
const SINGLE_ITERATIONS = 2_000;
/** Engine and raw take turns in blocks, so drift on the machine hits both alike. */
const SINGLE_BLOCK = 250;

/** A raw writer of one row per transaction, with its statements prepared once. */
function rawSingleWriter(sqlite: Sqlite.Database): (row: TaskRow) => void {
  const begin = sqlite.prepare('BEGIN IMMEDIATE');
  const insert = sqlite.prepare(INSERT_TASK_SQL);
  const commit = sqlite.prepare('COMMIT');
  return (row) => {
    begin.run();
    insert.run(row.id, row.project_id, row.title, row.rank);
    commit.run();
  };
}

async function engineSingle(engine: EngineSide, rows: readonly TaskRow[], samples: number[] | undefined): Promise<void> {
  for (const row of rows) {
    const t0 = performance.now();
    await engine.db.mutate('addTask', (m) => m.insert('tasks', row));
    const dt = performance.now() - t0;
    samples?.push(dt * 1000);
  }
}

function rawSingle(write: (row: TaskRow) => void, rows: readonly TaskRow[], samples: number[] | undefined): void {
  for (const row of rows) {
    const t0 = performance.now();
    write(row);
    const dt = performance.now() - t0;
    samples?.push(dt * 1000);
  }
}

export const singleRow: Benchmark = {
  name: 'mutate.single-row',
  guards: 'latency of a one-row db.mutate() (child row, parent exists) against BEGIN IMMEDIATE; INSERT; COMMIT in better-sqlite3',
  metrics: [
    { name: 'mutate.single-row.p50', unit: 'us', better: 'lower', target: 0.33 },
    { name: 'mutate.single-row.p99', unit: 'us', better: 'lower' },
  ],
  async run(ctx: BenchContext): Promise<Measurement[]> {
    const engine = await openEngine(ctx.tempDir('engine'));
    const raw = openRaw(ctx.tempDir('raw'));
    try {
      const write = rawSingleWriter(raw.sqlite);
      let next = 0;
      const batch = (n: number): TaskRow[] => Array.from({ length: n }, () => taskRow(`t-${++next}`, next));

      ctx.log(`warm-up: ${SINGLE_WARMUP} single-row writes each side`);
      const warm = batch(SINGLE_WARMUP);
      await engineSingle(engine, warm, undefined);
      rawSingle(write, warm, undefined);

      ctx.log(`measuring: ${SINGLE_ITERATIONS} single-row writes each side, alternating blocks of ${SINGLE_BLOCK}`);
      const engineUs: number[] = [];
      const rawUs: number[] = [];
      for (let done = 0, turn = 0; done < SINGLE_ITERATIONS; done += SINGLE_BLOCK, turn++) {
        const rows = batch(Math.min(SINGLE_BLOCK, SINGLE_ITERATIONS - done));
        if (turn % 2 === 0) {
          await engineSingle(engine, rows, engineUs);
          rawSingle(write, rows, rawUs);
        } else {
          rawSingle(write, rows, rawUs);
          await engineSingle(engine, rows, engineUs);
        }
      }

      await checkSides(engine, raw, SINGLE_WARMUP + SINGLE_ITERATIONS);
      return [
        { name: 'mutate.single-row.p50', value: percentile(engineUs, 50), limit: percentile(rawUs, 50) },
        { name: 'mutate.single-row.p99', value: percentile(engineUs, 99), limit: percentile(rawUs, 99) },
      ];
    } finally {
      raw.close();
      await engine.close();
    }
  },
};

// ------------------------------------------------------------- bulk write

const BULK_ROWS = 10_000;
const BULK_WARMUP = 1;
const BULK_REPEATS = 5;

export const bulk10k: Benchmark = {
  name: 'mutate.bulk-10k',
  guards: 'throughput of one 10,000-row db.mutate() against 10,000 prepared-statement inserts in one better-sqlite3 transaction',
  metrics: [{ name: 'mutate.bulk-10k.throughput', unit: 'rows/s', better: 'higher', target: 0.5 }],
  async run(ctx: BenchContext): Promise<Measurement[]> {
    const engine = await openEngine(ctx.tempDir('engine'));
    const raw = openRaw(ctx.tempDir('raw'));
    try {
      const begin = raw.sqlite.prepare('BEGIN IMMEDIATE');
      const insert = raw.sqlite.prepare(INSERT_TASK_SQL);
      const commit = raw.sqlite.prepare('COMMIT');
      const engineMs: number[] = [];
      const rawMs: number[] = [];

      const engineRun = async (rows: readonly TaskRow[]): Promise<number> => {
        const t0 = performance.now();
        await engine.db.mutate('importTasks', (m) => {
          for (const row of rows) m.insert('tasks', row);
        });
        return performance.now() - t0;
      };
      const rawRun = (rows: readonly TaskRow[]): number => {
        const t0 = performance.now();
        begin.run();
        for (const row of rows) insert.run(row.id, row.project_id, row.title, row.rank);
        commit.run();
        return performance.now() - t0;
      };

      const total = BULK_WARMUP + BULK_REPEATS;
      for (let rep = 0; rep < total; rep++) {
        const measured = rep >= BULK_WARMUP;
        ctx.log(`${measured ? `repeat ${rep - BULK_WARMUP + 1} of ${BULK_REPEATS}` : 'warm-up'}: ${BULK_ROWS} rows in one transaction, each side`);
        // Built before the clock starts; both sides write the same rows into their own file.
        const rows = Array.from({ length: BULK_ROWS }, (_, k) => taskRow(`b${rep}-${k}`, k));
        let e: number;
        let r: number;
        if (rep % 2 === 0) {
          e = await engineRun(rows);
          r = rawRun(rows);
        } else {
          r = rawRun(rows);
          e = await engineRun(rows);
        }
        if (measured) {
          engineMs.push(e);
          rawMs.push(r);
        }
      }

      await checkSides(engine, raw, total * BULK_ROWS);
      const perSecond = (ms: number): number => BULK_ROWS / (ms / 1000);
      return [{ name: 'mutate.bulk-10k.throughput', value: perSecond(median(engineMs)), limit: perSecond(median(rawMs)) }];
    } finally {
      raw.close();
      await engine.close();
    }
  },
};

export const benchmarks: readonly Benchmark[] = [singleRow, bulk10k];
