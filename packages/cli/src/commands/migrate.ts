import { applyMigration, MigrationError, migrationStatus, planMigration, readCatalog } from '@dovetail/server';
import type { MigrationEvent, MigrationOutcome, MigrationPlan, MigrationStatus, MigrationStep, RefusedChange } from '@dovetail/server';
import type { Command } from '../command.js';
import { openDatabase } from '../database.js';
import { CliError } from '../errors.js';
import type { CliIo } from '../io.js';
import { loadSchema } from '../load-module.js';
import { flag, stringOption } from '../options.js';
import type { OptionValues } from '../options.js';
import { closest } from '../suggest.js';
import { databaseUrlOption, dataDirOption, jsonOption, schemaOption } from '../option-specs.js';

const ACTIONS = ['plan', 'apply', 'status'] as const;
type Action = (typeof ACTIONS)[number];

function stepLines(steps: readonly MigrationStep[], withSql: boolean): string[] {
  return steps.flatMap((s, i) => [`  ${i + 1}. ${s.description}  [${s.id}]`, ...(withSql ? s.sql.map((q) => `       ${q.replace(/\s+/g, ' ').trim()};`) : [])]);
}

function refusedLines(refused: readonly RefusedChange[]): string[] {
  if (refused.length === 0) return [];
  return ['', `Refused (${refused.length}): migrate only makes changes that keep every row.`, ...refused.flatMap((r) => [`  - ${r.reason}`, `    what to do: ${r.action}`])];
}

function planText(plan: MigrationPlan): string {
  if (plan.steps.length === 0 && plan.refused.length === 0) return `The database matches schema version ${plan.schemaVersion}: nothing to do.`;
  const lines = [`Plan to bring the database to schema version ${plan.schemaVersion}: ${plan.steps.length} step(s), each in its own transaction.`, ...stepLines(plan.steps, true), ...refusedLines(plan.refused)];
  if (plan.refused.length === 0) lines.push('', "Run 'dovetail migrate apply' to apply it.");
  return lines.join('\n');
}

function statusText(status: MigrationStatus): string {
  // The history also marks each version reached; those are not steps.
  const steps = status.history.filter((h) => h.kind !== 'schema_version');
  const lines = [
    `Schema module: version ${status.schemaVersion}. Database: ${status.recordedVersion === null ? 'no version recorded yet' : `last brought in line with version ${status.recordedVersion}`}.`,
    `Applied steps: ${steps.length}${steps.length > 0 ? `, the last at ${steps.at(-1)?.appliedAt.toISOString() ?? ''}` : ''}.`,
  ];
  if (status.inSync) lines.push('In sync: nothing pending.');
  else lines.push(`Pending: ${status.pending.length} step(s).`, ...stepLines(status.pending, false), ...refusedLines(status.refused));
  return lines.join('\n');
}

function outcomeText(outcome: MigrationOutcome): string {
  const lines: string[] = [];
  if (outcome.failed) {
    const f = outcome.failed;
    lines.push(
      '',
      `Step failed: ${f.step.description}  [${f.step.id}]`,
      `  ${f.hint}`,
      `  Postgres said: ${f.error.code ? `${f.error.code} ` : ''}${f.error.message}`,
      `  The step was rolled back: the database is as it was before it. ${outcome.applied.length} earlier step(s) of this run stay applied; ${outcome.pending.length} step(s) remain.`,
    );
  } else {
    lines.push(outcome.applied.length === 0 ? `Nothing to do: the database matches schema version ${outcome.schemaVersion}.` : `Done: ${outcome.applied.length} step(s) applied; the database matches schema version ${outcome.schemaVersion}.`);
  }
  return lines.join('\n');
}

function progress(io: CliIo, json: boolean): (event: MigrationEvent) => void {
  return (event) => {
    if (json) return;
    if (event.type === 'step_started') io.stderr.write(`  applying ${event.step.id} ...\n`);
    else if (event.type === 'step_applied') io.stderr.write(`  applied  ${event.step.id} (${Math.round(event.ms)} ms)\n`);
  };
}

async function run(action: Action, values: OptionValues, io: CliIo): Promise<number> {
  const json = flag(values, 'json');
  const schema = await loadSchema(stringOption(values, 'schema'), io.cwd);
  const database = await openDatabase(values, io.cwd);
  const print = (text: string, data: unknown): void => void io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
  try {
    if (!json) io.stderr.write(`dovetail migrate ${action}: ${database.description}\n`);
    if (action === 'plan') {
      const plan = planMigration(schema, await readCatalog(database.sql));
      print(planText(plan), plan);
      return plan.refused.length > 0 ? 1 : 0;
    }
    if (action === 'status') {
      const status = await migrationStatus(database.sql, schema);
      print(statusText(status), status);
      return status.inSync ? 0 : 1;
    }
    try {
      const outcome = await applyMigration(database.sql, schema, { onStep: progress(io, json) });
      print(outcomeText(outcome), outcome);
      return outcome.failed ? 1 : 0;
    } catch (error) {
      if (!(error instanceof MigrationError)) throw error;
      print(error.message, { error: { code: error.code, message: error.message, refused: error.refused } });
      return 1;
    }
  } finally {
    await database.sql.close();
  }
}

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'plan, apply or check schema changes on the server database',
  usage: 'migrate plan|apply|status --schema <path> [options]',
  details: `plan    prints each step with its SQL; changes nothing
apply   runs the steps in order, each in its own transaction; keys are added NOT VALID
        and then validated; stops at the first failing step, which is rolled back
status  the version recorded, the steps applied, what is pending

Only changes that keep every row are made: dropping or retyping a column, making one
NOT NULL, and the like are refused with what to do instead.
Exit codes: 0 done or in sync, 1 a step failed, changes were refused or (status) steps
are pending, 2 could not run.`,
  options: [schemaOption, databaseUrlOption, dataDirOption, jsonOption],
  async run(parsed, io) {
    const [action, ...extra] = parsed.positionals;
    if (action === undefined) throw new CliError('usage', "migrate needs an action: plan, apply or status", "e.g. 'dovetail migrate plan --schema ./schema.ts'");
    if (!ACTIONS.includes(action as Action)) {
      const guess = closest(action, ACTIONS);
      throw new CliError('usage', `unknown migrate action '${action}'`, `${guess ? `did you mean '${guess}'? ` : ''}the actions are plan, apply and status`);
    }
    if (extra.length > 0) throw new CliError('usage', `unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`, 'migrate takes one action: plan, apply or status');
    return run(action as Action, parsed.values, io);
  },
};
