import { migrateAdvice } from './drift.js';
import type { Expected } from './expected.js';
import type { KeyCheck } from './keys.js';
import { ddlSteps } from './plan-ddl.js';
import { identitySteps, orphanSteps } from './plan-rows.js';
import type { DraftStep, IdentityToCreate } from './plan-rows.js';
import { inlineParams } from './plan-sql.js';
import type { DbShape } from './shape.js';
import { keyText } from './format.js';
import type { Finding, ManualAction, RepairPlan } from './types.js';

export interface PlanInput {
  readonly shape: DbShape;
  readonly expected: Expected | undefined;
  readonly checks: readonly KeyCheck[];
  readonly findings: readonly Finding[];
  readonly identity?: IdentityToCreate;
}

/**
 * Postgres cannot ALTER a table that still has deferred key checks queued
 * by this transaction's writes; running them now also proves the rows are
 * right before the keys change.
 */
const CHECK_NOW: DraftStep = {
  action: 'check_keys',
  table: '',
  description: 'check every deferred key now, before key definitions change (Postgres cannot alter a table with key checks pending)',
  sql: 'SET CONSTRAINTS ALL IMMEDIATE',
  params: [],
};

const SETUP = 'start `dovetail serve` once against the database (its setup creates them)';

/** What the doctor leaves to a migration or a running server, or undefined when a step repairs it (or it is only a fact). */
function manualOf(f: Finding, columnsAdded: ReadonlySet<string>, migrate: string): ManualAction | undefined {
  const todo = (subject: string, what: string = migrate): ManualAction => ({ code: f.code, subject, todo: what });
  switch (f.code) {
    case 'missing_table':
      return todo(`table ${f.details.table}`);
    case 'missing_column':
      return f.details.repairable ? undefined : todo(`column ${f.details.table}.${f.details.column}`);
    case 'missing_unique':
      return todo(`UNIQUE on ${f.details.table}.${f.details.column}`);
    case 'missing_key':
      return f.details.repairable ? undefined : todo(`key ${keyText(f.details.key)}`);
    case 'key_not_deferrable':
      return f.details.repairable ? undefined : todo(`key ${keyText(f.details.key)} (to make it DEFERRABLE INITIALLY DEFERRED)`);
    case 'key_differs':
      return todo(`key ${keyText(f.details.key)} (${f.details.expected})`);
    case 'key_on_missing_column':
      return f.details.missingColumns.every((c) => columnsAdded.has(`${f.details.key.table}.${c}`)) ? undefined : todo(`key ${keyText(f.details.key)} and its column`);
    case 'missing_engine_table':
      return todo(`engine tables ${f.details.tables.join(', ')}`, SETUP);
    case 'missing_capture_trigger':
      return f.details.present ? undefined : todo(`capture trigger of ${f.details.table}`, SETUP);
    case 'changes_past_retention':
      return todo('pruning of old change entries', 'keep `dovetail serve` running: it prunes them');
    case 'keys_not_enforced':
      if (f.details.reason === 'sqlite_keys_unavailable') return todo('foreign keys', 'use a SQLite build with foreign key support');
      if (f.details.reason === 'no_keys_declared') return todo('foreign keys', 'declare the keys in the schema and migrate');
      return undefined;
    default:
      return undefined;
  }
}

/**
 * The repair plan, in the order it runs: identity rows first (so the rows
 * that point at them stay), then orphans set to NULL or deleted child-first,
 * then schema repairs. Undefined when there is nothing to do.
 */
export function buildPlan(input: PlanInput): RepairPlan | undefined {
  const { shape, findings } = input;
  const rows: DraftStep[] = input.identity ? identitySteps(shape, input.expected, input.identity) : [];
  const created = new Set(input.identity?.users.map((u) => u.id) ?? []);
  for (const f of findings) {
    if (f.code !== 'orphan_rows') continue;
    rows.push(...orphanSteps(shape, input.checks, f, f.details.key.refTable === input.identity?.table ? created : new Set()));
  }
  const ddl = ddlSteps(shape, input.expected, findings);
  const drafts = shape.dialect === 'postgres' && rows.length > 0 && ddl.length > 0 ? [...rows, CHECK_NOW, ...ddl] : [...rows, ...ddl];
  const columnsAdded = new Set(ddl.flatMap((s) => (s.action === 'add_column' && s.column !== undefined ? [`${s.table}.${s.column}`] : [])));
  const advice = migrateAdvice(shape);
  const manual = findings.flatMap((f) => manualOf(f, columnsAdded, advice) ?? []);
  if (drafts.length === 0 && manual.length === 0) return undefined;
  return {
    dialect: shape.dialect,
    steps: drafts.map((d, i) => ({ ...d, number: i + 1, display: inlineParams(d.sql, d.params, shape.dialect) })),
    manual,
  };
}
