import { hash } from 'node:crypto';
import type { Schema } from '@dovetail/schema';
import { mutationContent } from '@dovetail/protocol';
import type { Mutation } from '@dovetail/protocol';
import { applyMutation, createdRows } from './apply-mutation.js';
import { guardedInsertSteps, insertScript } from './insert-script.js';
import type { Prefetched } from './insert-script.js';
import type { Identity } from './auth.js';
import { ServerError } from './errors.js';
import { admit } from './identity.js';
import type { IdentityRow } from './identity.js';
import type { Logger } from './logger.js';
import { runPipelined } from './pipeline.js';
import type { Pipelined } from './pipeline.js';
import { Refusal } from './refusal.js';
import type { RejectReason, RefusalDetails } from './refusal.js';
import { call, runScript } from './script.js';
import type { Step } from './script.js';
import { SIGNAL_CHANGES_SQL } from './setup.js';
import { CLAIM_CLIENT, LEDGER_READ, LEDGER_REFUSED, ledgerInsert, OPEN_MUTATION, RECORD_REFUSED, REOPEN_MUTATION } from './mutation-sql.js';
import { scriptLiteral as lit, sqlStateOf } from './sql.js';
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

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock

/** Key order does not matter: a client in another language may send the same mutation with its keys in another order. */
function digestOf(content: string): string {
  return hash('sha256', content, 'hex');
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
  try {
    for (let from = 0; from < input.mutations.length; from += MUTATIONS_PER_SESSION) {
      const run = input.mutations.slice(from, from + MUTATIONS_PER_SESSION);
      const done = await deps.sql.session((s) => processRun(deps, s, identity, input.clientId, run, results, unsignalled));
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
 * Mutations of one push share a connection in runs of this many, so the
 * end of one mutation's transaction travels with the start of the next;
 * on embedded PGlite, whose one connection a session holds, a run is
 * short enough that other requests get their turn.
 */
const MUTATIONS_PER_SESSION = 16;

/**
 * One run of mutations, each in its own transaction. What ends a
 * transaction (the ledger row and COMMIT, or a ROLLBACK) is not sent alone:
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
      while (!careful && i + stretch < run.length && pipelined[i + stretch] !== undefined) stretch++;
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

interface Outcome {
  /** Undefined: its predecessor is not here yet. */
  readonly result: MutationResult | undefined;
  /** The statements that end its transaction, sent with the next script. */
  readonly end: readonly Step[];
  /** Whether those statements commit the mutation's writes (not a replay, not a refusal). */
  readonly applied?: boolean;
}

/** OPEN_MUTATION's arguments (OPEN_EXPECTED's, but its mark) for mutation `m` of `clientId`, whose answer is `applied` unless it is refused. */
function openArgs(clientId: string, userId: string, m: Mutation & { prev?: string | null }, digest: string): string[] {
  const applied: MutationResult = { id: m.id, status: 'applied' };
  return [lit(clientId), lit(m.id), lit(m.prev ?? m.id), lit(userId), lit(digest), lit(JSON.stringify(applied))];
}

/** The mutation as the pipeline takes it (pipeline.ts), or undefined when it needs the careful path: too large, or not made only of inserts it can check without a decision between statements. */
function pipelinable(deps: PushDeps, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }): Pipelined | undefined {
  if (m.ops.length > deps.limits.maxOpsPerMutation) return undefined;
  const content = mutationContent(m);
  if (Buffer.byteLength(content) > deps.limits.maxMutationBytes) return undefined;
  const body = guardedInsertSteps(deps.schema, identity.userId, m);
  return body ? { m, open: openArgs(clientId, identity.userId, m, digestOf(content)), body } : undefined;
}

async function processWithRetry(deps: PushDeps, s: SqlSession, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }, carry: readonly Step[]): Promise<Outcome> {
  let pending = carry;
  for (let attempt = 1; ; attempt++) {
    try {
      return await processOne(deps, s, identity, clientId, m, pending);
    } catch (error) {
      const state = sqlStateOf(error);
      // A deadlock or serialization failure inside the mutation: roll back
      // and try again. (Not when the failure may have been the previous
      // mutation's COMMIT, sent in the same script: then the request fails.)
      if (state && RETRYABLE.has(state) && attempt < 5 && (error as { carried?: boolean }).carried !== true) {
        await s.script('ROLLBACK');
        pending = [];
        continue;
      }
      throw error;
    }
  }
}

/**
 * One mutation, one transaction, in as few round trips and statements as
 * the work allows: the transaction's start, the opening statement
 * (OPEN_MUTATION: the client's lock, the ledger row, the predecessor) and
 * a savepoint go as one script (after what ends the previous mutation's
 * transaction), with the mutation's statements too when it only inserts
 * (insert-script.ts); otherwise its statements follow; then COMMIT goes
 * with the next script. (A round trip costs more than the statements it
 * carries, and a statement more than the work most of them do.)
 *
 * The ledger row is written first, as applied, and corrected if the
 * mutation is refused: what the savepoint rolls back leaves it in place.
 */
async function processOne(deps: PushDeps, s: SqlSession, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }, carry: readonly Step[]): Promise<Outcome> {
  const content = mutationContent(m);
  const digest = digestOf(content);
  const size = Buffer.byteLength(content);
  const client = lit(clientId);
  const applied: MutationResult = { id: m.id, status: 'applied' };
  const open: Step[] = ['BEGIN ISOLATION LEVEL READ COMMITTED', call(OPEN_MUTATION, openArgs(clientId, identity.userId, m, digest)), 'SAVEPOINT mutation'];
  const tooLarge = m.ops.length > deps.limits.maxOpsPerMutation || size > deps.limits.maxMutationBytes;
  // Inserts only (nearly every mutation): its statements travel with the opening script.
  const fast = tooLarge ? undefined : insertScript(deps.schema, identity.userId, m);
  let opening: Opening | undefined;
  let prefetched: Prefetched | undefined;
  let failed: Error | undefined;
  try {
    const opened = await runScript(s, [...carry, ...open, ...(fast?.statements ?? [])]);
    opening = openingOf(opened[carry.length + 1]);
    if (fast) prefetched = fast.read(opened.slice(opened.length - fast.statements.length));
  } catch (error) {
    // Where did the script stop? If the savepoint exists, in the
    // mutation's own statements: what came before (the previous
    // mutation's COMMIT included) went through, and the error is this
    // mutation's. Otherwise before it: see processWithRetry.
    const inMutation = fast !== undefined && (await s.script('ROLLBACK TO SAVEPOINT mutation').then(() => true, () => false));
    if (!inMutation) {
      if (carry.length > 0 && error !== null && typeof error === 'object') Object.assign(error, { carried: true });
      throw error;
    }
    if (RETRYABLE.has(sqlStateOf(error) ?? '')) throw error;
    // The opening's answer went with the error: ask again (the savepoint kept what it did).
    opening = openingOf((await runScript(s, [call(REOPEN_MUTATION, [client, lit(m.id), lit(m.prev ?? m.id)])]))[0]);
    failed = error as Error;
  }
  if (!opening.claimed) {
    // Registered by admit(), so only gone if something else deleted it:
    // nothing of this mutation may commit (what the script carried did).
    await s.script('ROLLBACK');
    throw new ServerError('internal', `the server has no record of client '${clientId}' (its _dovetail_clients row is gone); push again, and the client is registered anew`);
  }
  if (!opening.fresh) {
    // A replay gets its first answer (the ledger row is another transaction's).
    const [, found] = await runScript(s, ['ROLLBACK', call(LEDGER_READ, [client, lit(m.id), lit(m.id)])]);
    const previous = (found ?? [])[0] as LedgerRow | undefined;
    if (!previous) throw new ServerError('internal', `mutation '${m.id}' of client '${clientId}' was in the ledger and is gone from it; push again`);
    return { result: replay(previous, digest, m.id), end: [] };
  }
  // A mutation whose predecessor is not here yet waits.
  if (!opening.prevHere) return { result: undefined, end: ['ROLLBACK'] };
  let refusal: Refusal | undefined;
  if (tooLarge) {
    refusal = new Refusal('too_large', `mutation '${m.name}' has ${m.ops.length} ops and ${size} bytes; the limits are ${deps.limits.maxOpsPerMutation} ops and ${deps.limits.maxMutationBytes} bytes. Split it into smaller mutations`);
  } else {
    const error = failed ?? (await applyMutation({ tx: s, schema: deps.schema, userId: identity.userId, clientId, ...(prefetched ? { prefetched } : {}) }, m).then(() => undefined, (e: unknown) => e as Error));
    if (error !== undefined) {
      refusal = asRefusal(error);
      if (!refusal) throw error;
      // Keys are checked before COMMIT so that Postgres never has to
      // raise this for well-formed traffic: if it did, a check missed a
      // case. The mutation is refused all the same; the log says so.
      if (sqlStateOf(error) === '23503') deps.log.warn('Postgres raised a foreign key violation the checks did not foresee', { sqlstate: '23503', clientId, mutationId: m.id, name: m.name });
    }
  }
  if (!refusal) return { result: applied, end: ['COMMIT'], applied: true };
  const { result, record } = refusalOf(deps, identity, clientId, m, refusal);
  return { result, end: ['ROLLBACK TO SAVEPOINT mutation', call(LEDGER_REFUSED, [client, lit(m.id), lit(JSON.stringify(result))]), ...record, 'COMMIT'] };
}

/** What OPEN_MUTATION found: the client's row (`claimed`), a new ledger row (`fresh`: not a replay), the predecessor. */
interface Opening {
  readonly claimed: boolean;
  readonly fresh: boolean;
  readonly prevHere: boolean;
}

function openingOf(rows: readonly Record<string, unknown>[] | undefined): Opening {
  const row = rows?.[0] ?? {};
  return { claimed: row['claimed'] === true, fresh: row['fresh'] === true, prevHere: row['prev_here'] === true };
}

/** A refused mutation's answer, and the statements that record the rows it would have created (for `parent_rejected`); its ledger row is the caller's. */
function refusalOf(deps: PushDeps, identity: Identity, clientId: string, m: Mutation, refusal: Refusal): { result: MutationResult; record: Step[] } {
  const result: MutationResult = {
    id: m.id,
    status: 'rejected',
    reason: refusal.reason,
    message: refusal.message,
    ...(Object.keys(refusal.details).length ? { details: refusal.details } : {}),
  };
  const client = lit(clientId);
  // One statement per table, however many rows (a refused import may have thousands).
  const byTable = new Map<string, string[]>();
  for (const row of createdRows(m, deps.schema)) {
    const ids = byTable.get(row.table);
    if (ids) ids.push(row.id);
    else byTable.set(row.table, [row.id]);
  }
  const refused = [...byTable].map(([table, ids]) => call(RECORD_REFUSED, [client, lit(table), lit(JSON.stringify(ids))]));
  deps.log.info('mutation refused', { clientId, mutationId: m.id, name: m.name, reason: refusal.reason, userId: identity.userId });
  return { result, record: refused };
}

/**
 * The script that ended `m`'s transaction failed (`error`). If the
 * transaction did not commit (a constraint checked at COMMIT, such as a
 * deferred constraint trigger, refused it), `m` is refused in a
 * transaction of its own, and its answer returned: the device would
 * otherwise send it again for ever. If it did commit (its ledger row is
 * there), the failure came after it: `committed`, for the caller to
 * weigh. Any other failure is thrown.
 */
async function endFailed(deps: PushDeps, s: SqlSession, identity: Identity, clientId: string, m: Mutation, error: unknown): Promise<MutationResult | 'committed'> {
  const refusal = asRefusal(error);
  await s.script('ROLLBACK'); // whatever state the failure left
  const client = lit(clientId);
  const [done] = await runScript(s, [call(LEDGER_READ, [client, lit(m.id), lit(m.id)])]);
  if ((done ?? []).length > 0) return 'committed';
  if (!refusal) throw error;
  const { result, record } = refusalOf(deps, identity, clientId, m, refusal);
  const ledgerRow = ledgerInsert(clientId, identity.userId, m.id, digestOf(mutationContent(m)), result);
  await runScript(s, ['BEGIN ISOLATION LEVEL READ COMMITTED', call(CLAIM_CLIENT, [client, lit(m.id)]), ledgerRow, ...record, 'COMMIT']);
  return result;
}

/** Integrity and data errors Postgres raised despite the checks become refusals, never 500s. */
function asRefusal(error: unknown): Refusal | undefined {
  if (error instanceof Refusal) return error;
  const state = sqlStateOf(error);
  if (!state) return undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (state === '23503') return new Refusal('parent_missing', message);
  if (state.startsWith('23') || state.startsWith('22')) return new Refusal('invalid', message);
  return undefined;
}

interface LedgerRow {
  digest: string;
  result: MutationResult;
}

function replay(previous: LedgerRow, digest: string, id: string): MutationResult {
  if (previous.digest === digest) return previous.result;
  return { id, status: 'rejected', reason: 'conflict', message: `mutation '${id}' was already received with different content; a mutation id is used once` };
}

