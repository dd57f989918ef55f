/**
 * `dovetail bench` (and `npm run bench`): runs the benchmarks, all of them
 * or those whose name contains one of the filters (case-insensitive);
 * `--list` lists them.
 *
 * Every metric is measured beside its physical limit in the same run and
 * printed as one `BENCH {...}` line; a table follows at the end. The exit
 * code is 1 if a metric misses its target or a benchmark fails to run.
 *
 * To add a benchmark: write `<area>.bench.ts` here exporting
 * `benchmarks: readonly Benchmark[]` (see harness.ts), say at its top what
 * it guards, and add it to `REGISTRY` below.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import Sqlite from 'better-sqlite3';
import type { Benchmark, BenchContext, BenchResult, MetricSpec } from './harness.js';
import { makeTempDir, removeTempDirs, toResult } from './harness.js';
import type { CliIo } from '../io.js';
import { benchLine, resultTable, targetText } from './report.js';
import * as mutate from './mutate.bench.js';
import * as firstSync from './sync.bench.js';
import * as push from './push.bench.js';
import * as realtime from './realtime.bench.js';

/** Every benchmark, in the order they run. */
const REGISTRY: readonly Benchmark[] = [...mutate.benchmarks, ...firstSync.benchmarks, ...push.benchmarks, ...realtime.benchmarks];

function checkRegistry(): void {
  const seen = new Set<string>();
  for (const b of REGISTRY) {
    for (const m of b.metrics) {
      if (seen.has(m.name)) throw new Error(`two benchmarks declare the metric '${m.name}'`);
      seen.add(m.name);
    }
  }
}

function selected(b: Benchmark, m: MetricSpec, filters: readonly string[]): boolean {
  if (filters.length === 0) return true;
  const names = [b.name.toLowerCase(), m.name.toLowerCase()];
  return filters.some((f) => names.some((n) => n.includes(f)));
}

function environment(): string {
  const require = createRequire(import.meta.url);
  const driverVersion = (require('better-sqlite3/package.json') as { version: string }).version;
  const mem = new Sqlite(':memory:');
  const sqliteVersion = mem.prepare('SELECT sqlite_version()').pluck().get() as string;
  mem.close();
  const cpu = cpus();
  return `node ${process.version}, better-sqlite3 ${driverVersion}, SQLite ${sqliteVersion}, ${cpu.length} CPU(s) ${cpu[0]?.model.trim() ?? ''}`.trimEnd();
}

/** Runs the selected benchmarks; resolves to the exit code. */
export async function runBenchmarks(filterArgs: readonly string[], list: boolean, io: CliIo): Promise<number> {
  const out = (line: string): void => void io.stdout.write(line + '\n');
  const err = (line: string): void => void io.stderr.write(line + '\n');
  checkRegistry();
  const filters = filterArgs.map((f) => f.toLowerCase());
  const plan = REGISTRY.map((b) => ({ bench: b, metrics: b.metrics.filter((m) => selected(b, m, filters)) })).filter((p) => p.metrics.length > 0);

  if (list) {
    for (const { bench, metrics } of plan) {
      out(`${bench.name}: ${bench.guards}`);
      for (const m of metrics) {
        const target = targetText({ ...m, absolute: m.absolute, target: m.target }, { labelRatio: true });
        out(`  ${m.name} (${m.unit}, ${m.better} is better${target === '-' ? '' : `, target ${target}`})`);
      }
    }
    return 0;
  }
  if (plan.length === 0) {
    err(`no benchmark matches ${filters.map((f) => `'${f}'`).join(', ')}; known: ${REGISTRY.flatMap((b) => b.metrics.map((m) => m.name)).join(', ')}`);
    return 2;
  }

  out(`# ${environment()}`);
  const results: BenchResult[] = [];
  const errors: { name: string; message: string }[] = [];
  for (const { bench, metrics } of plan) {
    out(`# ${bench.name}: ${bench.guards}`);
    const ctx: BenchContext = {
      tempDir: (label) => makeTempDir(label),
      log: (message) => err(`  [${bench.name}] ${message}`),
      note: (message) => out(`# [${bench.name}] ${message}`),
    };
    const started = performance.now();
    try {
      const measured = await bench.run(ctx);
      for (const spec of metrics) {
        const m = measured.find((x) => x.name === spec.name);
        if (!m) throw new Error(`it did not report the metric '${spec.name}' it declares`);
        const result = toResult(spec, m);
        results.push(result);
        out(benchLine(result));
      }
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push({ name: bench.name, message });
      err(`benchmark ${bench.name} failed: ${message}`);
    } finally {
      removeTempDirs();
    }
    ctx.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  out('');
  out(resultTable(results, errors));
  const failed = results.filter((r) => r.verdict === 'fail');
  const passed = results.filter((r) => r.verdict === 'pass');
  out('');
  out(`${passed.length} target(s) met, ${failed.length} missed, ${errors.length} benchmark(s) failed to run`);
  return failed.length > 0 || errors.length > 0 ? 1 : 0;
}
