import type { ErrorCode } from '@dovetail/protocol';
import type { MigrationFailure, MigrationStep, RefusedChange } from './types.js';

export type MigrationErrorCode = Extract<ErrorCode, 'migration_refused' | 'migration_failed' | 'schema_downgrade'>;

/**
 * Why `dovetail migrate` would not run, or stopped: `migration_refused`
 * (the schema asks for a change that would change or lose rows; `refused`
 * lists each), `migration_failed` (a step failed and was rolled back;
 * `failure` names it) or `schema_downgrade` (the database was migrated by a
 * newer schema). The message says what happened and what to do.
 */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  readonly code: MigrationErrorCode;
  readonly refused: readonly RefusedChange[];
  readonly failure: MigrationFailure | undefined;

  constructor(code: MigrationErrorCode, message: string, details: { refused?: readonly RefusedChange[]; failure?: MigrationFailure; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? {} : { cause: details.cause });
    this.code = code;
    this.refused = details.refused ?? [];
    this.failure = details.failure;
  }

  /** The error `apply` throws when the plan has refused changes. */
  static refused(refused: readonly RefusedChange[]): MigrationError {
    const lines = refused.map((r) => `- ${r.reason}.\n  What to do: ${r.action}.`);
    return new MigrationError(
      'migration_refused',
      `migrate applied nothing: ${refused.length === 1 ? 'one change' : `${refused.length} changes`} in the schema would change or lose rows, and migrate only makes changes that keep every row:\n${lines.join('\n')}`,
      { refused },
    );
  }

  /** A failed step as an error, for callers that prefer throwing to reading `outcome.failed`. */
  static failed(failure: MigrationFailure): MigrationError {
    return new MigrationError('migration_failed', `migration step ${failure.step.id} failed and was rolled back: ${failure.hint}`, { failure });
  }
}

/** What a driver error carries: both `pg` and PGlite report the SQLSTATE and Postgres's detail. */
function fieldsOf(error: unknown): { code: string; message: string; detail: string | undefined } {
  const e = error as { code?: unknown; message?: unknown; detail?: unknown } | null;
  return {
    code: typeof e?.code === 'string' ? e.code : '',
    message: typeof e?.message === 'string' ? e.message : String(error),
    detail: typeof e?.detail === 'string' && e.detail !== '' ? e.detail.replace(/\.$/, '') : undefined,
  };
}

/**
 * Turns the error of a failed step into plain words: what failed, why, and
 * what to do. Every branch starts from the fact that the step's
 * transaction was rolled back, so the database is as it was before it.
 */
export function explainFailure(step: MigrationStep, error: unknown, options: { lockTimeoutMs: number }): MigrationFailure {
  const { code, message, detail } = fieldsOf(error);
  const table = step.table ?? 'the table';
  const because = detail ? ` (${detail})` : '';
  const unchanged = 'Nothing of this step was applied; the steps before it stay applied.';
  let hint: string;
  switch (code) {
    case '23503':
      hint =
        `Existing rows of ${table} break key ${step.constraint ?? ''}: they point at parent rows that do not exist${because}. ${unchanged} ` +
        `The key itself stays in place NOT VALID, so every write since it was added is checked. ` +
        `Run \`dovetail doctor\` to list the orphan rows, then fix them (restore or re-point the parents, or delete the children) and run \`dovetail migrate apply\` again.`;
      break;
    case '23502':
      hint =
        `${table} has rows, and the new NOT NULL column without a default would leave them without a value${because}. ${unchanged} ` +
        `Give the column a default or make it nullable in the schema, then plan again.`;
      break;
    case '23505':
      hint = `Existing rows of ${table} hold duplicate values where the schema asks for unique ones${because}. ${unchanged} Remove the duplicates, then run apply again.`;
      break;
    case '55P03':
    case '57014':
      hint =
        `The step could not lock ${table} within ${options.lockTimeoutMs} ms, because other transactions were using it. ${unchanged} ` +
        `Run apply again when traffic is lower, or allow a longer lock timeout.`;
      break;
    case '40P01':
    case '40001':
      hint = `The step collided with another transaction on ${table}. ${unchanged} Run apply again.`;
      break;
    case '42P07':
    case '42710':
      hint =
        `Something of the same name already exists in the database but does not match the schema, so the plan could not see it as done${because}. ${unchanged} ` +
        `Run \`dovetail doctor\` to compare the database with the schema, rename or drop the object by hand, then plan again.`;
      break;
    case '42830':
      hint = `The referenced column has no primary key or unique constraint in the database, so a key cannot point at it${because}. ${unchanged} Make it unique, then plan again.`;
      break;
    case '42703':
    case '42P01':
      hint = `The step names a column or table the database does not have${because}. ${unchanged} Run \`dovetail doctor\` to see how the database differs from the schema, then plan again.`;
      break;
    default:
      hint = `Postgres refused the step: ${message}${because}. ${unchanged} Fix the cause, then run apply again.`;
  }
  return { step, error: { code, message }, hint: `Step ${step.id} failed. ${hint}` };
}
