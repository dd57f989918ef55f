import type { Expected } from './expected.js';
import type { KeyCheck } from './keys.js';
import { ddlSteps } from './plan-ddl.js';
import { identitySteps, orphanSteps } from './plan-rows.js';
import type { DraftStep, IdentityToCreate } from './plan-rows.js';
import { inlineParams } from './plan-sql.js';
import type { DbShape } from './shape.js';
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

/** What the doctor does not repair itself: the finding's own message says what to run. */
function isManual(f: Finding, columnsAdded: ReadonlySet<string>): boolean {
  switch (f.code) {
    case 'missing_table':
    case 'key_differs':
    case 'missing_engine_table':
    case 'changes_past_retention':
      return true;
    case 'missing_column':
    case 'missing_key':
    case 'key_not_deferrable':
      return !f.details.repairable;
    case 'key_on_missing_column':
      return !f.details.missingColumns.every((c) => columnsAdded.has(`${f.details.key.table}.${c}`));
    case 'keys_not_enforced':
      return f.details.reason !== 'triggers_disabled';
    case 'missing_capture_trigger':
      return !f.details.present;
    default:
      return false;
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
  const manual: ManualAction[] = findings.filter((f) => isManual(f, columnsAdded)).map((f) => ({ code: f.code, message: f.message }));
  if (drafts.length === 0 && manual.length === 0) return undefined;
  return {
    dialect: shape.dialect,
    steps: drafts.map((d, i) => ({ ...d, number: i + 1, display: inlineParams(d.sql, d.params, shape.dialect) })),
    manual,
  };
}
