import { plural } from './format.js';
import { ROW_ACTIONS } from './plan-rows.js';
import type { DoctorReport, Finding, RepairPlan, RepairResult } from './types.js';

/** Orphan rows shown per key in text; JSON lists them all. */
const SHOWN_ROWS = 10;

const EXPECTED = { schema: 'the schema module', device_snapshot: "the schema snapshot stored in the file (no --schema given)", none: 'the keys the database declares (no --schema given)' } as const;

function renderFinding(f: Finding, n: string): string[] {
  const lines = [`  ${n} [${f.code}] ${f.message}`];
  if (f.code === 'orphan_rows') {
    const { rows, count } = f.details;
    for (const r of rows.slice(0, SHOWN_ROWS)) lines.push(`       ${r.text}  (row ${f.details.key.table} ${r.id})`);
    const more = count - Math.min(rows.length, SHOWN_ROWS);
    if (more > 0) lines.push(`       and ${more} more`);
  }
  if (f.code === 'missing_identity_row' && f.details.count > 1) {
    lines.push(`       users: ${f.details.userIds.slice(0, SHOWN_ROWS).join(', ')}${f.details.count > SHOWN_ROWS ? ` and ${f.details.count - SHOWN_ROWS} more` : ''}`);
  }
  return lines;
}

/** The plan as numbered steps, each with its SQL, and what is left to `dovetail migrate`. */
export function renderPlan(plan: RepairPlan): string {
  const lines: string[] = [];
  if (plan.steps.length > 0) {
    lines.push(`Repair plan: ${plural(plan.steps.length, 'step')}, run in one transaction after a backup; if any step fails, nothing changes.`);
    for (const s of plan.steps) {
      lines.push(`  ${s.number}. ${s.description}${s.expectedRows === undefined ? '' : ` [${plural(s.expectedRows, 'row')}]`}`);
      lines.push(`     ${s.display};`);
    }
  }
  if (plan.manual.length > 0) {
    lines.push('Not repaired by the doctor:');
    const byTodo = new Map<string, string[]>();
    for (const m of plan.manual) byTodo.set(m.todo, [...(byTodo.get(m.todo) ?? []), m.subject]);
    for (const [todo, subjects] of byTodo) lines.push(`  - ${todo}, for: ${subjects.join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * A report for people: what was checked, then problems, warnings and
 * facts, then (unless `withPlan` is false) the repair plan.
 */
export function renderReport(report: DoctorReport, options: { withPlan?: boolean } = {}): string {
  const withPlan = options.withPlan ?? true;
  const s = report.summary;
  const lines = [
    `Dovetail doctor: ${report.target}${report.kind === 'sqlite' ? ' (SQLite)' : ''}`,
    `Checked ${plural(s.tables, 'table')} and ${plural(s.keysChecked, 'key')} (about ${plural(s.rowsChecked, 'row')}) against ${EXPECTED[s.expected]}.`,
  ];
  const groups = [
    ['problem', 'Problems'],
    ['warning', 'Warnings'],
    ['info', 'Information'],
  ] as const;
  for (const [severity, title] of groups) {
    const fs = report.findings.filter((f) => f.severity === severity);
    if (fs.length === 0) continue;
    lines.push('', `${title} (${fs.length})`);
    fs.forEach((f, i) => lines.push(...renderFinding(f, severity === 'problem' ? `${i + 1}.` : '-')));
  }
  if (report.plan && withPlan) lines.push('', renderPlan(report.plan));
  const problems = report.findings.filter((f) => f.severity === 'problem').length;
  const repairable = report.plan !== undefined && report.plan.steps.length > 0;
  const next = !repairable ? '' : withPlan ? ' Review the plan above, then apply it with --fix --yes (a backup is written first).' : ' --fix shows a repair plan; --fix --yes applies it after a backup.';
  lines.push('', report.healthy ? 'Healthy: no problems found.' : `${plural(problems, 'problem')} found.${next}`);
  return lines.join('\n');
}

/** What a repair did: the backup, each step with its row count, or the step that failed; then the diagnosis after it. */
export function renderRepair(result: RepairResult): string {
  const lines: string[] = [];
  if (!result.applied && !result.failed) {
    lines.push(renderPlan(result.plan), '', 'Nothing was changed: add --yes to apply the plan.');
    return lines.join('\n');
  }
  if (result.backup) lines.push(`Backup written first: ${result.backup}`);
  if (result.failed) {
    lines.push(`Repair failed at step ${result.failed.step} (${result.failed.description}): ${result.failed.error}`, 'Everything was rolled back: the database is as it was before the repair.');
  } else {
    lines.push(`Applied ${plural(result.steps.length, 'step')} in one transaction:`);
    for (const s of result.steps) lines.push(`  ${s.number}. ${s.description}: ${ROW_ACTIONS.has(s.action) ? `${plural(s.rows, 'row')} changed` : 'done'}`);
  }
  if (result.after) lines.push('', 'After the repair:', renderReport(result.after));
  return lines.join('\n');
}
