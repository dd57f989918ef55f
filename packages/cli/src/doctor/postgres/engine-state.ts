import { ENGINE_TABLES } from '@dovetail/server';
import type { SqlQueryable } from '@dovetail/server';
import type { Expected } from '../expected.js';
import { ageText, plural } from '../format.js';
import type { DbShape } from '../shape.js';
import type { EngineStateDetails, Finding } from '../types.js';

const CAPTURE = '_dovetail_capture';
const SETUP = 'start `dovetail serve` once against this database: its setup creates the engine tables and the capture triggers';

/**
 * The server side of sync: engine tables, a capture trigger on every synced
 * table (or writes from other code never reach devices), and change
 * entries kept no longer than the retention (else pruning is not running).
 */
export async function serverEngineState(sql: SqlQueryable, shape: DbShape, expected: Expected | undefined, retentionMs: number): Promise<Finding[]> {
  const present = ENGINE_TABLES.filter((t) => shape.tables.has(t));
  if (present.length === 0) {
    if (!expected) {
      const details: EngineStateDetails = { side: 'server', retentionMs, notes: ['no Dovetail engine tables: checked as a plain Postgres database'] };
      return [{ code: 'engine_state', severity: 'info', message: 'no Dovetail engine tables in this schema: only tables, keys and orphans were checked', details }];
    }
    return [{ code: 'missing_engine_table', severity: 'problem', message: `the sync engine's tables are missing (${ENGINE_TABLES.join(', ')}); ${SETUP}`, details: { tables: [...ENGINE_TABLES] } }];
  }
  const out: Finding[] = [];
  const missing = ENGINE_TABLES.filter((t) => !shape.tables.has(t));
  if (missing.length > 0) out.push({ code: 'missing_engine_table', severity: 'problem', message: `engine tables missing: ${missing.join(', ')}; ${SETUP}`, details: { tables: missing } });
  const synced = expected ? expected.tables.filter((t) => t.synced).map((t) => t.name) : [];
  for (const name of synced) {
    const table = shape.tables.get(name);
    if (!table) continue;
    const trigger = table.triggers.find((t) => t.name === CAPTURE);
    if (trigger?.enabled) continue;
    out.push({
      code: 'missing_capture_trigger',
      severity: 'problem',
      message: trigger
        ? `the change-capture trigger of ${name} is disabled, so its writes never reach devices; \`dovetail doctor --fix\` enables it`
        : `${name} has no change-capture trigger, so rows written to it never reach devices; ${SETUP}`,
      details: { table: name, present: trigger !== undefined },
    });
  }
  const notes: string[] = [];
  let changes: number | undefined;
  let oldestAt: string | null = null;
  if (shape.tables.has('_dovetail_changes')) {
    // min(at) reads one end of the index on `at`; the count is Postgres's estimate (a real count would read the whole table).
    const [c] = await sql.query<{ oldest: string | null; age_ms: number | null }>(
      `SELECT min(at)::text AS oldest, (extract(epoch FROM now() - min(at)) * 1000)::float8 AS age_ms FROM _dovetail_changes`,
    );
    changes = shape.tables.get('_dovetail_changes')?.rowEstimate ?? 0;
    oldestAt = c?.oldest ?? null;
    const age = c?.age_ms ?? null;
    if (age !== null) notes.push(`the oldest change entry is ${ageText(age)} old (retention ${ageText(retentionMs)})`);
    // A day of slack: pruning runs periodically, not continuously.
    if (age !== null && oldestAt !== null && age > retentionMs + 24 * 3600 * 1000) {
      out.push({
        code: 'changes_past_retention',
        severity: 'warning',
        message: `change entries are kept ${ageText(age)}, longer than the ${ageText(retentionMs)} retention: pruning is not running, so the table only grows; keep \`dovetail serve\` running (it prunes), or check its --retention`,
        details: { oldestAt, retentionMs },
      });
    }
  }
  if (shape.tables.has('_dovetail_meta')) {
    const [p] = await sql.query<{ value: string }>(`SELECT value FROM _dovetail_meta WHERE key = 'pruned_xid'`);
    if (p) notes.push(`deletions up to transaction ${p.value} were pruned: a device whose cursor is older resyncs`);
  }
  const ledger = shape.tables.get('_dovetail_ledger');
  if (ledger) notes.push(`about ${plural(ledger.rowEstimate, 'processed mutation')} in the ledger`);
  const details: EngineStateDetails = { side: 'server', ...(changes === undefined ? {} : { changes, oldestChangeAt: oldestAt }), retentionMs, notes };
  out.push({ code: 'engine_state', severity: 'info', message: `sync server: about ${plural(changes ?? 0, 'change entry', 'change entries')} kept; ${notes.join('; ')}`, details });
  return out;
}
