import { quoteIdent as q, quoteLiteral } from '@dovetail/schema';
import type { RepairStep } from '../types.js';

/** What one applied step needs undone, gathered while it ran. */
export interface UndoRecord {
  readonly step: RepairStep;
  /** Rows as they were before the step (`to_jsonb` text), for deletes and updates. */
  readonly before: readonly string[];
  /** Keys of rows the step inserted (identity rows). */
  readonly inserted: readonly string[];
}

const record = (table: string, json: string): string => `jsonb_populate_record(NULL::${q(table)}, ${quoteLiteral(json)}::jsonb)`;

function undoStatements(u: UndoRecord, primaryKey: (table: string) => readonly string[]): string[] {
  const { step } = u;
  switch (step.action) {
    case 'delete_rows':
      return u.before.map((json) => `INSERT INTO ${q(step.table)} SELECT * FROM ${record(step.table, json)}`);
    case 'set_null': {
      const pk = primaryKey(step.table);
      const cols = step.rows?.columns ?? [];
      if (pk.length === 0) return [`-- ${u.before.length} rows of ${step.table} had ${cols.join(', ')} set to NULL, but the table has no primary key to find them by`];
      const match = pk.map((c) => `t.${q(c)} = r.${q(c)}`).join(' AND ');
      return u.before.map((json) => `UPDATE ${q(step.table)} AS t SET ${cols.map((c) => `${q(c)} = r.${q(c)}`).join(', ')} FROM ${record(step.table, json)} AS r WHERE ${match}`);
    }
    case 'create_identity_row':
      return u.inserted.length === 0 ? [] : [`DELETE FROM ${q(step.table)} WHERE ${q(step.column ?? 'id')}::text IN (${u.inserted.map(quoteLiteral).join(', ')})`];
    default:
      return [...(step.undo?.sql ?? [])];
  }
}

/**
 * The backup of a Postgres repair: one SQL script that undoes it, steps in
 * reverse (so deleted parents come back before their children), with every
 * row the repair deleted or changed written out in full. One statement per
 * line, in one transaction with keys deferred.
 */
export function backupScript(schemaName: string, writtenAt: string, applied: readonly UndoRecord[], primaryKey: (table: string) => readonly string[]): string {
  const lines = [
    `-- Dovetail doctor backup of Postgres schema ${schemaName}, written ${writtenAt}, before the repair it undoes.`,
    '-- It puts back every row the repair deleted or changed, removes the rows it created, and undoes its key changes.',
    '-- Restore with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f <this file>',
    'BEGIN;',
    `SET LOCAL search_path TO ${q(schemaName)};`,
    'SET CONSTRAINTS ALL DEFERRED;',
  ];
  for (const u of [...applied].reverse()) {
    const statements = undoStatements(u, primaryKey);
    if (statements.length === 0) continue;
    lines.push(`-- undo step ${u.step.number}: ${u.step.description.replace(/\n/g, ' ')}`);
    lines.push(...statements.map((s) => (s.startsWith('--') ? s : `${s};`)));
  }
  const atEnd = applied.flatMap((u) => u.step.undo?.atEnd ?? []);
  if (atEnd.length > 0) lines.push('-- keys put back as they were, after every row is back', ...atEnd.map((s) => `${s};`));
  lines.push('COMMIT;', '');
  return lines.join('\n');
}
