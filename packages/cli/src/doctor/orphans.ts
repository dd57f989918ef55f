import { quoteIdent as q } from '@dovetail/schema';
import { keyText, orphanText, plural, reportValue } from './format.js';
import { missingForScan } from './keys.js';
import type { KeyCheck } from './keys.js';
import type { DbShape } from './shape.js';
import type { DoctorProgress, Finding, KeyRef, OrphanRow } from './types.js';

/** The little the shared checks need from either database. */
export interface DoctorDb {
  readonly dialect: 'sqlite' | 'postgres';
  all<R extends object>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** SQLite scans big tables in rowid ranges of this size, so progress moves. */
const CHUNK = 100_000;

export const placeholder = (dialect: DoctorDb['dialect'], n: number): string => (dialect === 'sqlite' ? '?' : `$${n}`);

/**
 * `alias` rows whose key has no parent: every key column set (a key with a
 * NULL column is not checked, as both databases do) and no parent row with
 * those values. Postgres compares as text when the column types differ (a
 * drifted database), rather than fail.
 */
export function orphanWhere(shape: DbShape, key: KeyRef, alias: string): string {
  const child = shape.tables.get(key.table);
  const parent = shape.tables.get(key.refTable);
  const p = `${alias}_p`;
  const eq = key.columns.map((c, i) => {
    const r = key.refColumns[i] ?? '';
    const cast = shape.dialect === 'postgres' && child?.columns.get(c)?.type !== parent?.columns.get(r)?.type;
    return cast ? `${p}.${q(r)}::text = ${alias}.${q(c)}::text` : `${p}.${q(r)} = ${alias}.${q(c)}`;
  });
  const set = key.columns.map((c) => `${alias}.${q(c)} IS NOT NULL`);
  return `${set.join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${q(key.refTable)} AS ${p} WHERE ${eq.join(' AND ')})`;
}

/** How to name a row of `table`: its primary key, else SQLite's rowid or Postgres's ctid. */
export function rowIdColumns(shape: DbShape, table: string, alias: string): string[] {
  const pk = shape.tables.get(table)?.primaryKey ?? [];
  if (pk.length > 0) return pk.map((c) => `${alias}.${q(c)}`);
  return [shape.dialect === 'sqlite' ? `${alias}.rowid` : `${alias}.ctid::text`];
}

export interface ScanResult {
  readonly findings: Finding[];
  readonly keysChecked: number;
  readonly rowsChecked: number;
  readonly orphans: number;
}

type Row = Record<string, unknown>;

/** Finds, for each key, every child row without a parent: counted in full, listed up to `maxListed`. */
export interface ScanOptions {
  readonly maxListed: number;
  readonly onProgress?: (e: DoctorProgress) => void;
  /** Identity rows the repair will create: orphans pointing at them stay. */
  readonly recreated?: { readonly table: string; readonly ids: ReadonlySet<string> };
}

/** What the repair will do about these orphans, in words. */
function fixHint(check: KeyCheck, rows: readonly OrphanRow[], count: number, recreated: ScanOptions['recreated']): string {
  const base = check.nullable ? '`dovetail doctor --fix` sets the key to NULL' : '`dovetail doctor --fix` deletes them and the rows that depend on them';
  if (!recreated || check.ref.refTable !== recreated.table || check.ref.columns.length !== 1) return base;
  const kept = rows.filter((r) => typeof r.values[0] === 'string' && recreated.ids.has(r.values[0])).length;
  if (kept === 0) return base;
  if (kept === count) return `\`dovetail doctor --fix\` creates the missing ${recreated.table} row they point at, so they stay`;
  return `${base}, except ${kept === 1 ? 'the one that points' : `the ${kept} that point`} at an identity row the repair creates`;
}

export async function scanOrphans(db: DoctorDb, shape: DbShape, checks: readonly KeyCheck[], options: ScanOptions): Promise<ScanResult> {
  const findings: Finding[] = [];
  let keysChecked = 0;
  const scanned = new Map<string, number>();
  let orphans = 0;
  for (const check of checks) {
    const key = check.ref;
    const missing = missingForScan(shape, key);
    if (missing !== undefined) {
      if (shape.tables.get(key.table) && key.columns.every((c) => shape.tables.get(key.table)?.columns.has(c))) {
        findings.push({ code: 'not_checked', severity: 'warning', message: `orphans of ${keyText(key)} were not looked for: ${missing}`, details: { what: `orphans of ${keyText(key)}` } });
      }
      continue;
    }
    keysChecked++;
    const { rows, count, estimate } = await scanKey(db, shape, key, options);
    scanned.set(key.table, estimate);
    if (count === 0) continue;
    orphans += count;
    const what = check.db ? 'the key is declared but was not enforced when they were written' : 'the database does not declare this key';
    findings.push({
      code: 'orphan_rows',
      severity: 'problem',
      message: `${plural(count, `row of ${key.table} points`, `rows of ${key.table} point`)} at ${key.refTable} rows that do not exist (${keyText(key)}; ${what}); ${fixHint(check, rows, count, options.recreated)}`,
      details: { key, keyInDatabase: check.db !== undefined, nullable: check.nullable, count, rows },
    });
  }
  return { findings, keysChecked, rowsChecked: [...scanned.values()].reduce((a, b) => a + b, 0), orphans };
}

async function scanKey(db: DoctorDb, shape: DbShape, key: KeyRef, options: { maxListed: number; onProgress?: (e: DoctorProgress) => void }): Promise<{ rows: OrphanRow[]; count: number; estimate: number }> {
  const table = shape.tables.get(key.table);
  const ids = rowIdColumns(shape, key.table, 'c');
  const select = [...ids.map((e, i) => `${e} AS k${i}`), ...key.columns.map((c, i) => `c.${q(c)} AS v${i}`)].join(', ');
  const from = `FROM ${q(key.table)} AS c WHERE ${orphanWhere(shape, key, 'c')}`;
  const report = (done: number, estimate: number): void => options.onProgress?.({ phase: 'scan', table: key.table, key: keyText(key), rowsChecked: done, rowsEstimate: estimate });
  const ranges: ([number, number] | undefined)[] = [];
  let estimate = table?.rowEstimate ?? 0;
  if (db.dialect === 'sqlite' && table?.hasRowid) {
    const max = Number((await db.all<{ m: number | null }>(`SELECT max(rowid) AS m FROM ${q(key.table)}`))[0]?.m ?? 0);
    estimate = max;
    for (let lo = 0; lo < max; lo += CHUNK) ranges.push([lo, Math.min(lo + CHUNK, max)]);
    if (ranges.length === 0) ranges.push([0, 0]);
  } else ranges.push(undefined);
  report(0, estimate);
  const rows: OrphanRow[] = [];
  let count = 0;
  for (const range of ranges) {
    // Ranges only on SQLite, whose placeholders are positional.
    const where = range ? ' AND c.rowid > ? AND c.rowid <= ?' : '';
    const params = range ? [range[0], range[1]] : [];
    const room = options.maxListed - rows.length;
    if (room > 0) {
      const limit = placeholder(db.dialect, params.length + 1);
      const found = await db.all<Row>(`SELECT ${select}, count(*) OVER () AS total ${from}${where} ORDER BY ${ids.join(', ')} LIMIT ${limit}`, [...params, room]);
      count += Number(found[0]?.['total'] ?? 0);
      for (const r of found) {
        const values = key.columns.map((_, i) => reportValue(r[`v${i}`]));
        const id = ids.map((_, i) => String(reportValue(r[`k${i}`]))).join(', ');
        rows.push({ id, values, text: orphanText(key, values) });
      }
    } else {
      const found = await db.all<{ n: number | string }>(`SELECT count(*) AS n ${from}${where}`, params);
      count += Number(found[0]?.n ?? 0);
    }
    report(range ? range[1] : estimate, estimate);
  }
  return { rows, count, estimate };
}
