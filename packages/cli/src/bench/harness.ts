/**
 * The shared parts of every benchmark: what a benchmark declares, what it
 * returns, how a measured value and its physical limit become a ratio, and
 * the temporary directories it may write to.
 *
 * A benchmark never reports a bare number. Each metric is measured beside
 * its limit (the same work done straight through the drivers, SQLite and,
 * for sync, the server's Postgres driver, in the same process, in the same
 * run), and the ratio says which share of that limit the engine reaches:
 * 1.0 is as fast as the raw drivers, 0.5 is half as fast. A metric may also
 * carry an absolute target, checked as well.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a smaller value (a latency) or a larger one (a throughput) is better. */
export type Better = 'lower' | 'higher';

/** One number a benchmark reports, declared before it runs. */
export interface MetricSpec {
  /** Unique across all benchmarks, e.g. `mutate.single-row.p50`. */
  readonly name: string;
  /** Unit of `value` and `limit`, e.g. `us` or `rows/s`. */
  readonly unit: string;
  readonly better: Better;
  /** The ratio the metric must reach. */
  readonly target?: number;
  /**
   * An absolute target in `unit`, checked as well as the ratio: the value
   * must be at least this for a throughput, below this for a latency.
   * A metric with neither target is informational.
   */
  readonly absolute?: number;
}

/** What a benchmark measured for one metric: the engine and the raw limit, same unit. */
export interface Measurement {
  readonly name: string;
  readonly value: number;
  readonly limit: number;
}

export interface BenchContext {
  /** A fresh directory under the OS temporary directory, removed after the benchmark. */
  tempDir(label: string): string;
  /** Progress for the reader; goes to stderr so that stdout stays parseable. */
  log(message: string): void;
  /** A fact the results depend on (e.g. which server database ran): a `# ` comment line on stdout. */
  note(message: string): void;
}

export interface Benchmark {
  /** Short name, e.g. `mutate.single-row`; the name filter also matches it. */
  readonly name: string;
  /** One sentence: which promise of the engine this benchmark guards. */
  readonly guards: string;
  readonly metrics: readonly MetricSpec[];
  /** Measures every declared metric, engine and limit in the same run. */
  run(ctx: BenchContext): Promise<Measurement[]>;
}

/** A metric with its ratio and verdict, as printed. */
export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly limit: number;
  /** Share of the raw limit reached: value/limit for a throughput, limit/value for a latency. */
  readonly ratio: number;
  readonly target: number | undefined;
  readonly absolute: number | undefined;
  readonly better: Better;
  readonly verdict: 'pass' | 'fail' | 'info';
}

export function ratioOf(better: Better, value: number, limit: number): number {
  if (!(value > 0) || !(limit > 0)) return Number.NaN;
  return better === 'higher' ? value / limit : limit / value;
}

/** Whether `value` meets an absolute target: at least it for a throughput, below it for a latency. */
export function meetsAbsolute(better: Better, value: number, absolute: number): boolean {
  return better === 'higher' ? value >= absolute : value < absolute;
}

export function toResult(spec: MetricSpec, m: Measurement): BenchResult {
  const ratio = ratioOf(spec.better, m.value, m.limit);
  const { target, absolute } = spec;
  const checks: boolean[] = [];
  if (target !== undefined) checks.push(ratio >= target);
  if (absolute !== undefined) checks.push(meetsAbsolute(spec.better, m.value, absolute));
  const verdict = checks.length === 0 ? 'info' : checks.every(Boolean) ? 'pass' : 'fail';
  return { name: spec.name, unit: spec.unit, value: m.value, limit: m.limit, ratio, target, absolute, better: spec.better, verdict };
}

// ---------------------------------------------------------------- statistics

/** The q-th percentile (0..100) of `samples`, nearest rank. */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

// ---------------------------------------------------------- temp directories

const liveDirs = new Set<string>();

/** Creates a temporary directory that `removeTempDirs` (or process exit) deletes. */
export function makeTempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `dovetail-bench-${label}-`));
  liveDirs.add(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of liveDirs) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}

// An interrupted run (Ctrl-C) still removes what it created.
process.on('exit', removeTempDirs);
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

// ------------------------------------------------------------------ CPU use

/** CPU time spent since a `cpuMeter()` started, in ms: by this process, and by every other process on the machine (the database server, mostly). */
export interface CpuSpent {
  readonly processMs: number;
  /** Undefined where the machine's total is unknown (no `/proc/stat`). */
  readonly othersMs: number | undefined;
}

function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const ticks = [user, nice, system, irq, softirq, steal].reduce<number>((sum, v) => sum + (v ?? 0), 0);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Starts counting CPU time. On a shared machine of few cores, where the
 * engine and the database compete for the same cores, CPU time per row says
 * more about cost than elapsed time does.
 */
export function cpuMeter(): () => CpuSpent {
  const usage = process.cpuUsage();
  const busy = machineBusyMs();
  return () => {
    const spent = process.cpuUsage(usage);
    const processMs = (spent.user + spent.system) / 1000;
    const now = machineBusyMs();
    return { processMs, othersMs: now === undefined || busy === undefined ? undefined : Math.max(0, now - busy - processMs) };
  };
}

export function describeCpu(spent: CpuSpent): string {
  return `CPU ${Math.round(spent.processMs)} ms here${spent.othersMs === undefined ? '' : `, ${Math.round(spent.othersMs)} ms in other processes`}`;
}
