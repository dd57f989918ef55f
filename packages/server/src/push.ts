import type { Schema } from '@dovetail/schema';
import { mutationContent } from '@dovetail/protocol';
import type { Mutation } from '@dovetail/protocol';
import type { Identity } from './auth.js';
import { digestOf, endFailed, openArgs, processWithRetry } from './careful-path.js';
import type { Outcome } from './careful-path.js';
import { ServerError } from './errors.js';
import { admit } from './identity.js';
import type { IdentityRow } from './identity.js';
import { guardedInsertSteps } from './insert-script.js';
import type { Logger } from './logger.js';
import { runPipelined } from './pipeline.js';
import type { Pipelined } from './pipeline.js';
import type { RejectReason, RefusalDetails } from './refusal.js';
import { runScript } from './script.js';
import type { Step } from './script.js';
import { SIGNAL_CHANGES_SQL } from './setup.js';
import { sqlStateOf } from './sql.js';
import type { Sql, SqlSession } from './sql.js';

export interface PushLimits {
  /** Mutations in one push request. */
  readonly maxMutationsPerPush: number;
  /** Ops in one mutation. */
  readonly maxOpsPerMutation: number;
  /** Bytes of one mutation's content: its name and ops, as JSON. */
  readonly maxMutationBytes: number;
}

export type MutationResult =
  | { readonly id: string; readonly status: 'applied' }
  | { readonly id: string; readonly status: 'rejected'; readonly reason: RejectReason; readonly message: string; readonly details?: RefusalDetails };

export interface PushInput {
  readonly clientId: string;
  readonly mutations: readonly (Mutation & { readonly prev?: string | null })[];
}

export interface PushDeps {
  readonly sql: Sql;
  readonly schema: Schema;
  readonly limits: PushLimits;
  readonly identityRow: IdentityRow;
  readonly log: Logger;
  /**
   * Called once a push has committed changes (its writes are quiet, so the
   * poke service learns of them here, not from each commit).
   */
  readonly committed?: () => void;
}

/**
 * Applies a push: each mutation in its own transaction, in order, with the
 * ledger row written in the same transaction as its effects. A replay gets
 * the original result; the same id with other content is a `conflict`. A
 * mutation whose predecessor (`prev`) has not reached the server yet stops
 * the push there: the client sends the rest again later.
 */
export async function push(deps: PushDeps, identity: Identity, input: PushInput): Promise<MutationResult[]> {
  if (input.mutations.length > deps.limits.maxMutationsPerPush) {
    throw new ServerError('too_many_mutations', `a push may carry at most ${deps.limits.maxMutationsPerPush} mutations, this one has ${input.mutations.length}; send them in smaller pushes`);
  }
  await admit(deps.sql, deps.schema, identity, deps.identityRow, input.clientId, 'push');
  const results: MutationResult[] = [];
  const unsignalled = { count: 0 };
  const batches = { on: true };
  try {
    for (let from = 0; from < input.mutations.length; from += MUTATIONS_PER_SESSION) {
      const run = input.mutations.slice(from, from + MUTATIONS_PER_SESSION);
      const done = await deps.sql.session((s) => processRun(deps, s, identity, input.clientId, run, results, unsignalled, batches));
      if (!done) break; // a predecessor is not here yet
    }
  } finally {
    // Commits no script signalled (the request failed part way, or the
    // signal did): what committed is there to pull all the same.
    if (unsignalled.count > 0) deps.committed?.();
  }
  return results;
}

/**
 * Mutations of one push share a connection in runs of this many: a run's
 * insert mutations go as one batch (pipeline.ts), and on the careful path
 * the end of one mutation's transaction travels with the start of the
 * next; on embedded PGlite, whose one connection a session holds, a run is
 * short enough that other requests get their turn.
 */
const MUTATIONS_PER_SESSION = 16;

/**
 * One run of mutations, each in its own transaction. Stretches of
 * mutations a batch may take go as batches; the rest, and the mutation
 * that stopped a batch, take the careful path (careful-path.ts). There,
 * what ends a transaction (COMMIT, or a ROLLBACK) is not sent alone:
 * it opens the next mutation's first script, or closes the run, followed
 * there by the signal to the poke service when the run committed anything
 * (`unsignalled` counts the commits no script has signalled yet). If a
 * script fails and the mutation it ended did not commit (a constraint
 * checked at COMMIT), that mutation is refused in its place (`endFailed`);
 * any other failure fails the request, and the device pushes again.
 * Resolves to false when a mutation's predecessor has not arrived.
 */
async function processRun(
  deps: PushDeps,
  s: SqlSession,
  identity: Identity,
  clientId: string,
  run: readonly (Mutation & { prev?: string | null })[],
  results: MutationResult[],
  unsignalled: { count: number },
  /** Off for the rest of the request once batches cannot work here. */
  batches: { on: boolean },
): Promise<boolean> {
  let carry: readonly Step[] = [];
  let carried = 0;
  /** The mutation whose transaction `carry` ends. */
  let ending: Mutation | undefined;
  /**
   * The script that ended `ending`'s transaction failed. If that transaction
   * did not commit, `ending` is refused in place of its answer; if it did,
   * the failure came after its COMMIT: 'committed' (and it is counted).
   */
  const failedAtEnd = async (error: unknown): Promise<'refused' | 'committed'> => {
    if (!ending) throw error;
    const answer = await endFailed(deps, s, identity, clientId, ending, error);
    unsignalled.count += answer === 'committed' ? carried : 0;
    carried = 0;
    if (answer === 'committed') return answer;
    results[results.length - 1] = answer;
    return 'refused';
  };
  /** Sends what ends the last transaction on its own (a pipelined batch opens with its own BEGIN). */
  const flush = async (): Promise<void> => {
    if (carry.length === 0) return;
    const steps = carry;
    carry = [];
    try {
      await runScript(s, steps);
      unsignalled.count += carried;
      carried = 0;
    } catch (error) {
      if ((await failedAtEnd(error)) === 'committed') throw error;
    }
  };
  const pipelined = run.map((m) => pipelinable(deps, identity, clientId, m));
  /**
   * After the pipeline stopped at a mutation, the careful path takes the
   * next ones too, until one is applied: a push sent again replays many
   * mutations in a row, and each would stop a batch.
   */
  let careful = false;
  try {
    for (let i = 0; i < run.length; ) {
      let stretch = 0;
      while (batches.on && !careful && i + stretch < run.length && pipelined[i + stretch] !== undefined) stretch++;
      if (stretch > 0) {
        await flush();
        const batch = pipelined.slice(i, i + stretch) as Pipelined[];
        const done = await runPipelined(s, batch, i + stretch === run.length);
        for (const p of batch.slice(0, done.committed)) results.push({ id: p.m.id, status: 'applied' });
        if (done.signalled) unsignalled.count = 0;
        else unsignalled.count += done.committed;
        if (done.lost !== undefined) {
          unsignalled.count += 1; // some may have committed
          throw done.lost;
        }
        i += done.committed;
        if (done.committed === stretch) continue;
        if (sqlStateOf(done.stoppedBy) === '42883') {
          // Every batch would stop at its first statement: the careful way for the rest of the request.
          batches.on = false;
          deps.log.warn('batched pushes need the function _dovetail_expect, which the database lacks; run `dovetail migrate apply`, or start the server with setup', { sqlstate: '42883', clientId });
        }
        careful = true; // the careful path finds out what stopped it, and answers
      }
      const m = run[i++] as Mutation & { prev?: string | null };
      // Handed on: from here the next script carries it (sent once, whatever happens).
      const pending = carry;
      carry = [];
      let outcome: Outcome;
      try {
        outcome = await processWithRetry(deps, s, identity, clientId, m, pending);
      } catch (error) {
        if ((error as { carried?: boolean } | null)?.carried !== true) {
          // It failed after what it carried (the previous mutation's COMMIT) went through.
          unsignalled.count += carried;
          throw error;
        }
        if ((await failedAtEnd(error)) === 'committed') throw error;
        outcome = await processWithRetry(deps, s, identity, clientId, m, []);
      }
      unsignalled.count += carried; // the script that carried its COMMIT went through
      carry = outcome.end;
      carried = outcome.applied ? 1 : 0;
      ending = outcome.result ? m : undefined;
      if (outcome.applied) careful = false;
      if (!outcome.result) return false;
      results.push(outcome.result);
    }
    return true;
  } finally {
    if (carry.length > 0) {
      // The run's last commit, and the signal for every commit before it.
      const signal = unsignalled.count + carried > 0;
      try {
        await runScript(s, signal ? [...carry, SIGNAL_CHANGES_SQL] : carry);
        unsignalled.count = 0;
      } catch (error) {
        // A failed signal (after the COMMIT) does not fail the push: the
        // commits are signalled once it is over (see push).
        if ((await failedAtEnd(error)) === 'committed' && !signal) throw error;
      }
    }
  }
}

/** The mutation as the pipeline takes it (pipeline.ts), or undefined when it needs the careful path: too large, or not made only of inserts it can check without a decision between statements. */
function pipelinable(deps: PushDeps, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }): Pipelined | undefined {
  if (m.ops.length > deps.limits.maxOpsPerMutation) return undefined;
  // Any other kind of mutation is turned away before its content is serialized.
  const body = guardedInsertSteps(deps.schema, identity.userId, m);
  if (!body) return undefined;
  const content = mutationContent(m);
  if (Buffer.byteLength(content) > deps.limits.maxMutationBytes) return undefined;
  return { m, open: openArgs(clientId, identity.userId, m, digestOf(content)), body };
}
