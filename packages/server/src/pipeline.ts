import { randomUUID } from 'node:crypto';
import type { Mutation } from '@dovetail/protocol';
import { OPEN_EXPECTED, PIPELINE_SETTING } from './mutation-sql.js';
import { call, runScript } from './script.js';
import type { Call, Step } from './script.js';
import { SIGNAL_CHANGES_SQL } from './setup.js';
import { scriptLiteral as lit } from './sql.js';
import type { SqlSession } from './sql.js';

/**
 * A mutation the pipeline may take: an insert-only mutation whose every
 * check is a statement that fails unless it holds (see
 * `guardedInsertSteps`), so its transaction needs no decision between its
 * statements.
 */
export interface Pipelined {
  readonly m: Mutation;
  /** OPEN_EXPECTED's arguments but the mark: client, mutation, predecessor (or itself), user, digest, the applied answer. */
  readonly open: readonly string[];
  /** The transaction's statements after the opening. */
  readonly body: readonly Call[];
}

export interface PipelineOutcome {
  /** How many of the batch committed, from its start. */
  readonly committed: number;
  /** Whether the signal to the poke service went out after the last commit (asked for, and every mutation committed). */
  readonly signalled: boolean;
  /**
   * Set when the session's state after a failure could not be read: how
   * many committed is unknown (`committed` is 0), and the request fails
   * with this.
   */
  readonly lost?: Error;
  /** What stopped the batch, if anything did. */
  readonly stoppedBy?: unknown;
}

/**
 * Runs a batch of mutations, each in its own transaction, as one script:
 * `BEGIN; open; body; COMMIT` for each, then the signal when asked for.
 * A round trip and the driver's work per script are shared by the batch.
 *
 * Each opening leaves a mark in a session setting (PIPELINE_SETTING): the
 * batch's id and the mutation's place in it. When a statement fails
 * (a check that does not hold, a replay, a predecessor not here yet, a
 * constraint, a deadlock), Postgres skips the rest of the script and the
 * failing transaction rolls back, taking its mark with it: the mark then
 * names the last mutation that committed. The mutation after it is for the
 * careful path to take, which finds out what happened and answers as it
 * always does.
 */
export async function runPipelined(s: SqlSession, batch: readonly Pipelined[], signal: boolean): Promise<PipelineOutcome> {
  const id = randomUUID();
  const steps: Step[] = [];
  batch.forEach((p, place) => {
    steps.push('BEGIN ISOLATION LEVEL READ COMMITTED', call(OPEN_EXPECTED, [...p.open, lit(`${id}:${place}`)]), ...p.body, 'COMMIT');
  });
  if (signal) steps.push(SIGNAL_CHANGES_SQL);
  try {
    await runScript(s, steps);
    return { committed: batch.length, signalled: signal };
  } catch (error) {
    try {
      await s.script('ROLLBACK'); // the failed transaction, if one is open
      const rows = await s.query<{ mark: string | null }>(`SELECT current_setting('${PIPELINE_SETTING}', true) AS mark`);
      const mark = rows[0]?.mark ?? '';
      const last = mark.startsWith(`${id}:`) ? Number(mark.slice(id.length + 1)) : -1;
      return { committed: last + 1, signalled: false, stoppedBy: error };
    } catch {
      return { committed: 0, signalled: false, lost: error instanceof Error ? error : new Error(String(error)) };
    }
  }
}
