import type { Schema } from '@dovetail/schema';
import { readCatalog } from '../catalog.js';
import { SCHEMA_LOCK_KEY } from '../setup.js';
import type { Sql, SqlQueryable } from '../sql.js';
import { MigrationError, explainFailure } from './errors.js';
import { HISTORY_DDL, HISTORY_TABLE, recordStep, recordVersion, recordedVersion } from './history.js';
import { planMigration } from './plan.js';
import type { MigrationEvent, MigrationFailure, MigrationOutcome, MigrationPlan, MigrationStep } from './types.js';

export interface ApplyOptions {
  /** Called as each step starts, commits or fails, e.g. to print progress. */
  readonly onStep?: (event: MigrationEvent) => void;
  /**
   * How long a step may wait for a lock on a table before it gives up
   * (default 5000 ms). A step such as `ALTER TABLE` that waits behind a
   * long transaction would otherwise block every query queued behind it,
   * stalling the app; failing fast leaves the database unchanged instead.
   */
  readonly lockTimeoutMs?: number;
}

/** The result of one step's transaction. */
type Round = { readonly kind: 'done' } | { readonly kind: 'refused'; readonly plan: MigrationPlan } | { readonly kind: 'applied'; readonly step: MigrationStep };

const lock = (tx: SqlQueryable): Promise<unknown> => tx.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);

async function checkNotDowngrade(tx: SqlQueryable, schema: Schema): Promise<void> {
  const recorded = await recordedVersion(tx);
  if (recorded !== null && recorded > schema.version) {
    throw new MigrationError(
      'schema_downgrade',
      `the database was migrated to schema version ${recorded}, newer than this schema (version ${schema.version}); migrate never goes backwards. Deploy the schema module of version ${recorded} or later.`,
    );
  }
}

/**
 * Brings the database in line with the schema, one step at a time.
 *
 * Each step runs in its own transaction, which first takes the schema
 * advisory lock (the one `setupDatabase` takes), then reads the catalog
 * and plans again, and runs the first step of that fresh plan. Planning
 * under the lock is what makes two instances migrating at once safe: the
 * second waits, then finds the step done and moves on, so no step runs
 * twice. The step is recorded in `_dovetail_migrations` in the same
 * transaction, and the plan is checked once more before commit, so a step
 * that did not achieve what it claims is rolled back instead of looping.
 *
 * It stops at the first failing step: that step's transaction rolls back,
 * leaving the database exactly as it was before it, and the outcome says
 * which step failed, why, and what to do. Nothing runs while the plan has
 * refused changes: that throws a `MigrationError` (`migration_refused`).
 *
 * @example
 * const outcome = await applyMigration(sql, schema, { onStep: (e) => console.log(e.type) });
 * if (outcome.failed) console.error(outcome.failed.hint);
 */
export async function applyMigration(sql: Sql, schema: Schema, options: ApplyOptions = {}): Promise<MigrationOutcome> {
  const lockTimeoutMs = Math.max(1, Math.round(options.lockTimeoutMs ?? 5000));
  const version = schema.version;
  // Refusals and downgrades are found before anything is written.
  const catalog = await readCatalog(sql);
  if (catalog.tables.has(HISTORY_TABLE)) await checkNotDowngrade(sql, schema);
  const first = planMigration(schema, catalog);
  if (first.refused.length > 0) throw MigrationError.refused(first.refused);
  await sql.transaction(async (tx) => {
    await lock(tx);
    await tx.query(HISTORY_DDL);
  });

  const applied: MigrationStep[] = [];
  for (;;) {
    // Set inside the transaction; an object, so the catch below sees the writes.
    const at: { step?: MigrationStep; pending: MigrationStep[] } = { pending: [] };
    let round: Round;
    const started = Date.now();
    try {
      round = await sql.transaction(async (tx): Promise<Round> => {
        await lock(tx);
        await tx.query(`SET LOCAL lock_timeout = '${lockTimeoutMs}ms'`);
        const plan = planMigration(schema, await readCatalog(tx));
        if (plan.refused.length > 0) return { kind: 'refused', plan };
        const step = plan.steps[0];
        if (!step) {
          await recordVersion(tx, version);
          return { kind: 'done' };
        }
        at.step = step;
        at.pending = plan.steps;
        if (applied.some((s) => s.id === step.id)) throw new StepDidNotHold(step);
        options.onStep?.({ type: 'step_started', step });
        for (const statement of step.sql) await tx.query(statement);
        await recordStep(tx, step, version);
        const after = planMigration(schema, await readCatalog(tx));
        if (after.steps.some((s) => s.id === step.id)) throw new StepDidNotHold(step);
        return { kind: 'applied', step };
      });
    } catch (error) {
      if (at.step === undefined) throw error;
      const failure = error instanceof StepDidNotHold ? error.failure : explainFailure(at.step, error, { lockTimeoutMs });
      options.onStep?.({ type: 'step_failed', failure });
      return { schemaVersion: version, applied, failed: failure, pending: at.pending };
    }
    if (round.kind === 'done') return { schemaVersion: version, applied, pending: [] };
    // Someone changed the database by hand between two steps.
    if (round.kind === 'refused') throw MigrationError.refused(round.plan.refused);
    applied.push(round.step);
    options.onStep?.({ type: 'step_applied', step: round.step, ms: Date.now() - started });
  }
}

/** A step that ran without error yet is still planned: a bug, rolled back rather than repeated forever. */
class StepDidNotHold extends Error {
  readonly failure: MigrationFailure;
  constructor(step: MigrationStep) {
    super(`step ${step.id} ran but the database still differs from the schema in the way it should have fixed`);
    this.failure = {
      step,
      error: { code: '', message: this.message },
      hint: `Step ${step.id} ran but did not bring the database in line with the schema, so it was rolled back. Run \`dovetail doctor\` to see how the database differs, and report this as a bug in migrate.`,
    };
  }
}
