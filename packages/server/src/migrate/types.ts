/**
 * The data of `dovetail migrate`: what a plan holds, what applying it
 * reports, and what `status` shows. Plain objects, so the CLI can print
 * them as text or JSON.
 */

export type MigrationStepKind =
  | 'engine'
  | 'create_table'
  | 'add_column'
  | 'drop_not_null'
  | 'set_default'
  | 'add_unique'
  | 'add_foreign_key'
  | 'replace_foreign_key'
  | 'make_deferrable'
  | 'create_index'
  | 'capture'
  | 'validate_foreign_key';

/**
 * One change, applied in its own transaction. `id` is stable across runs
 * (`add_column:posts.reply_to`), so a plan printed yesterday and the
 * history recorded today name the same step the same way.
 */
export interface MigrationStep {
  readonly id: string;
  readonly kind: MigrationStepKind;
  /** One human sentence: what the step does and, where it matters, why. */
  readonly description: string;
  /** Statements run in order, in one transaction. */
  readonly sql: string[];
  /** The table the step changes (every step but `engine` has one). */
  readonly table?: string;
  /** The constraint the step adds or changes, for key steps. */
  readonly constraint?: string;
}

export type RefusedKind =
  | 'drop_column'
  | 'retype_column'
  | 'set_not_null'
  | 'not_null_on_rows'
  | 'change_primary_key'
  | 'change_key_target'
  | 'key_not_enforced';

/**
 * A difference between the schema and the database that migrate will not
 * make, because it would change or lose rows (or needs a decision only a
 * person can make). `apply` refuses to run while any exists.
 */
export interface RefusedChange {
  readonly id: string;
  readonly kind: RefusedKind;
  readonly table: string;
  readonly column?: string;
  /** What differs, and why migrate leaves it alone. */
  readonly reason: string;
  /** What to do about it. */
  readonly action: string;
}

export interface MigrationPlan {
  /** The schema module's version the plan leads to. */
  readonly schemaVersion: number;
  /** In the order they must run: tables parents first, columns before their keys. */
  readonly steps: MigrationStep[];
  readonly refused: RefusedChange[];
}

/** A step that failed, with the database left as it was before it. */
export interface MigrationFailure {
  readonly step: MigrationStep;
  /** `code` is the SQLSTATE (e.g. `23503`), or `''` when the error had none. */
  readonly error: { readonly code: string; readonly message: string };
  /** What went wrong in plain words, and what to do. */
  readonly hint: string;
}

export interface MigrationOutcome {
  readonly schemaVersion: number;
  /** Steps applied by this run, in order (each committed on its own). */
  readonly applied: MigrationStep[];
  readonly failed?: MigrationFailure;
  /** Steps still to do after this run (the failed one first, if any). */
  readonly pending: MigrationStep[];
}

export type MigrationEvent =
  | { readonly type: 'step_started'; readonly step: MigrationStep }
  | { readonly type: 'step_applied'; readonly step: MigrationStep; readonly ms: number }
  | { readonly type: 'step_failed'; readonly failure: MigrationFailure };

/** One row of `_dovetail_migrations`. */
export interface AppliedMigration {
  readonly step: string;
  readonly kind: string;
  readonly sql: string;
  readonly schemaVersion: number;
  readonly appliedAt: Date;
}

export interface MigrationStatus {
  /** The last schema version the database was brought fully in line with, or null. */
  readonly recordedVersion: number | null;
  /** The schema module's version. */
  readonly schemaVersion: number;
  /** Every step applied so far, oldest first. */
  readonly history: AppliedMigration[];
  readonly pending: MigrationStep[];
  readonly refused: RefusedChange[];
  /** True when nothing is pending or refused: the database matches the schema. */
  readonly inSync: boolean;
}
