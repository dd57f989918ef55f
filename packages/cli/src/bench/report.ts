/**
 * How results are printed: one machine-readable `BENCH {...}` line per
 * metric as soon as it is measured, and a table for people at the end.
 */
import type { BenchResult } from './harness.js';

/** Readable precision: whole numbers for large values, two decimals otherwise. */
function roundValue(x: number): number {
  if (!Number.isFinite(x)) return x;
  return Math.abs(x) >= 1000 ? Math.round(x) : Math.round(x * 100) / 100;
}

/** Three decimals; three significant digits for ratios below 0.01, so that a tiny ratio does not print as 0. */
function roundRatio(x: number): number {
  if (!Number.isFinite(x)) return x;
  return Math.abs(x) < 0.01 ? Number(x.toPrecision(3)) : Math.round(x * 1000) / 1000;
}

/**
 * `BENCH {"name":…,"unit":…,"value":…,"limit":…,"ratio":…}` on one line.
 * A value that could not be measured (NaN) prints as null.
 */
export function benchLine(r: BenchResult): string {
  const json = JSON.stringify({ name: r.name, unit: r.unit, value: roundValue(r.value), limit: roundValue(r.limit), ratio: roundRatio(r.ratio) });
  return `BENCH ${json}`;
}

function fmtNumber(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return roundValue(x).toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** The targets of a metric as printed: the ratio's, the absolute one, or both (all must be met). */
export function targetText(r: Pick<BenchResult, 'target' | 'absolute' | 'better' | 'unit'>, options: { labelRatio?: boolean } = {}): string {
  const parts: string[] = [];
  if (r.target !== undefined) parts.push(`${options.labelRatio ? 'ratio ' : ''}>= ${r.target}`);
  if (r.absolute !== undefined) parts.push(`${r.better === 'higher' ? '>=' : '<'} ${fmtNumber(r.absolute)} ${r.unit}`);
  return parts.length === 0 ? '-' : parts.join(' and ');
}

/** A plain-text table: name, value, limit, ratio, target(s), pass/fail. */
export function resultTable(results: readonly BenchResult[], errors: readonly { name: string; message: string }[]): string {
  const header = ['benchmark', 'value', 'limit (raw)', 'ratio', 'target', 'result'];
  const rows = results.map((r) => [
    r.name,
    `${fmtNumber(r.value)} ${r.unit}`,
    `${fmtNumber(r.limit)} ${r.unit}`,
    !Number.isFinite(r.ratio) ? 'n/a' : Math.abs(r.ratio) < 0.01 ? r.ratio.toPrecision(3) : r.ratio.toFixed(3),
    targetText(r),
    r.verdict === 'info' ? 'info' : r.verdict === 'pass' ? 'PASS' : 'FAIL',
  ]);
  for (const e of errors) rows.push([e.name, '-', '-', '-', '-', 'ERROR']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const numeric = new Set([1, 2, 3]);
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}
