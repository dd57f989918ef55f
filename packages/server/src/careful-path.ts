import { hash } from 'node:crypto';
import { mutationContent } from '@dovetail/protocol';
import type { Mutation } from '@dovetail/protocol';
import { applyMutation, createdRows } from './apply-mutation.js';
import type { Identity } from './auth.js';
import { ServerError } from './errors.js';
import { insertScript } from './insert-script.js';
import type { Prefetched } from './insert-script.js';
import { CLAIM_CLIENT, LEDGER_READ, LEDGER_REFUSED, ledgerInsert, OPEN_MUTATION, RECORD_REFUSED, REOPEN_MUTATION } from './mutation-sql.js';
import type { MutationResult, PushDeps } from './push.js';
import { Refusal } from './refusal.js';
import { call, runScript } from './script.js';
import type { Step } from './script.js';
import { scriptLiteral as lit, sqlStateOf } from './sql.js';
import type { SqlSession } from './sql.js';

/**
 * The careful path of a push: one mutation at a time, each decision made
 * in the server between its statements (applyMutation), with a savepoint
 * to fall back to. Every mutation that a batch (pipeline.ts) does not
 * take comes here, and so does the one that stopped a batch, which it
 * answers: a refusal with its reason, a replay's first answer, a wait for
 * its predecessor.
 */

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock

/** Key order does not matter: a client in another language may send the same mutation with its keys in another order. */
export function digestOf(content: string): string {
  return hash('sha256', content, 'hex');
}

/** What became of one mutation on the careful path. */
export interface Outcome {
  /** Undefined: its predecessor is not here yet. */
  readonly result: MutationResult | undefined;
  /** The statements that end its transaction, sent with the next script. */
  readonly end: readonly Step[];
  /** Whether those statements commit the mutation's writes (not a replay, not a refusal). */
  readonly applied?: boolean;
}

/** OPEN_MUTATION's arguments (OPEN_EXPECTED's, but its mark) for mutation `m` of `clientId`, whose answer is `applied` unless it is refused. */
export function openArgs(clientId: string, userId: string, m: Mutation & { prev?: string | null }, digest: string): string[] {
  const applied: MutationResult = { id: m.id, status: 'applied' };
  return [lit(clientId), lit(m.id), lit(m.prev ?? m.id), lit(userId), lit(digest), lit(JSON.stringify(applied))];
}

/** processOne, tried again after a deadlock or a serialization failure inside the mutation. */
export async function processWithRetry(deps: PushDeps, s: SqlSession, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }, carry: readonly Step[]): Promise<Outcome> {
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
export async function endFailed(deps: PushDeps, s: SqlSession, identity: Identity, clientId: string, m: Mutation, error: unknown): Promise<MutationResult | 'committed'> {
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

