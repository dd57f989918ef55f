import { createHash } from 'node:crypto';
import type { Schema } from '@dovetail/schema';
import { mutationContent } from '@dovetail/protocol';
import type { Mutation } from '@dovetail/protocol';
import { applyMutation, createdRows } from './apply-mutation.js';
import type { Identity } from './auth.js';
import { ServerError } from './errors.js';
import { ensureIdentity } from './identity.js';
import type { IdentityRow } from './identity.js';
import type { Logger } from './logger.js';
import { Refusal } from './refusal.js';
import type { RejectReason, RefusalDetails } from './refusal.js';
import { sqlStateOf } from './sql.js';
import type { Sql, SqlQueryable } from './sql.js';

export interface PushLimits {
  /** Mutations in one push request. */
  readonly maxMutationsPerPush: number;
  /** Ops in one mutation. */
  readonly maxOpsPerMutation: number;
  /** Bytes of one mutation's JSON. */
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
}

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock

/** Key order does not matter: a client in another language may send the same mutation with its keys in another order. */
function digestOf(m: Mutation): string {
  return createHash('sha256').update(mutationContent(m)).digest('hex');
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
  await ensureIdentity(deps.sql, deps.schema, identity, deps.identityRow);
  await checkClientOwner(deps.sql, input.clientId, identity.userId);
  const results: MutationResult[] = [];
  for (const m of input.mutations) {
    const result = await processWithRetry(deps, identity, input.clientId, m);
    if (!result) break; // its predecessor is not here yet
    results.push(result);
  }
  return results;
}

/** A device id belongs to the first user who pushed with it; another user's token may not use it (I1). */
export async function checkClientOwner(sql: Sql, clientId: string, userId: string): Promise<void> {
  const rows = await sql.query<{ user_id: string }>('SELECT user_id FROM _dovetail_ledger WHERE client_id = $1 LIMIT 1', [clientId]);
  const owner = rows[0]?.user_id;
  if (owner !== undefined && owner !== userId) {
    throw new ServerError('forbidden', 'this client id belongs to another user; a device database pushes only under its own user\'s token');
  }
}

async function processWithRetry(deps: PushDeps, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }): Promise<MutationResult | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await processOne(deps, identity, clientId, m);
    } catch (error) {
      const state = sqlStateOf(error);
      if (state && RETRYABLE.has(state) && attempt < 5) continue;
      throw error;
    }
  }
}

async function processOne(deps: PushDeps, identity: Identity, clientId: string, m: Mutation & { prev?: string | null }): Promise<MutationResult | undefined> {
  const digest = digestOf(m);
  const size = Buffer.byteLength(JSON.stringify(m.ops));
  return deps.sql.transaction(async (tx) => {
    await lockClient(tx, clientId);
    // One look at the ledger: this mutation (a replay?) and its predecessor (here yet?).
    const known = await tx.query<LedgerRow & { mutation_id: string }>(
      'SELECT mutation_id, digest, result FROM _dovetail_ledger WHERE client_id = $1 AND mutation_id = ANY($2::text[])',
      [clientId, m.prev ? [m.id, m.prev] : [m.id]],
    );
    const previous = known.find((k) => k.mutation_id === m.id);
    if (previous) return replay(previous, digest, m.id);
    if (m.prev && !known.some((k) => k.mutation_id === m.prev)) return undefined;
    let refusal: Refusal | undefined;
    if (m.ops.length > deps.limits.maxOpsPerMutation || size > deps.limits.maxMutationBytes) {
      refusal = new Refusal('too_large', `mutation '${m.name}' has ${m.ops.length} ops and ${size} bytes; the limits are ${deps.limits.maxOpsPerMutation} ops and ${deps.limits.maxMutationBytes} bytes. Split it into smaller mutations`);
    } else {
      await tx.query('SAVEPOINT mutation');
      try {
        await applyMutation({ tx, schema: deps.schema, userId: identity.userId, clientId }, m);
      } catch (error) {
        refusal = asRefusal(error);
        if (!refusal) throw error;
        // Undo the mutation's effects; the refusal is recorded in their place.
        await tx.query('ROLLBACK TO SAVEPOINT mutation');
      }
    }
    if (!refusal) {
      const applied: MutationResult = { id: m.id, status: 'applied' };
      await recordLedger(tx, clientId, identity.userId, m.id, digest, applied);
      return applied;
    }
    const rejected: MutationResult = {
      id: m.id,
      status: 'rejected',
      reason: refusal.reason,
      message: refusal.message,
      ...(Object.keys(refusal.details).length ? { details: refusal.details } : {}),
    };
    await recordLedger(tx, clientId, identity.userId, m.id, digest, rejected);
    for (const row of createdRows(m, deps.schema)) {
      await tx.query('INSERT INTO _dovetail_refused (client_id, tbl, row_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [clientId, row.table, row.id]);
    }
    deps.log.info('mutation refused', { clientId, mutationId: m.id, name: m.name, reason: refusal.reason, userId: identity.userId });
    return rejected;
  });
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

async function lockClient(tx: SqlQueryable, clientId: string): Promise<void> {
  // One mutation of a client at a time, across requests and server instances.
  await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 42))', [clientId]);
}

interface LedgerRow {
  digest: string;
  result: MutationResult;
}


function replay(previous: LedgerRow, digest: string, id: string): MutationResult {
  if (previous.digest === digest) return previous.result;
  return { id, status: 'rejected', reason: 'conflict', message: `mutation '${id}' was already received with different content; a mutation id is used once` };
}

async function recordLedger(tx: SqlQueryable, clientId: string, userId: string, mutationId: string, digest: string, result: MutationResult): Promise<void> {
  await tx.query(
    `INSERT INTO _dovetail_ledger (client_id, mutation_id, user_id, seq, digest, result)
     VALUES ($1, $2, $3, (SELECT COALESCE(max(seq), 0) + 1 FROM _dovetail_ledger WHERE client_id = $1), $4, $5::jsonb)`,
    [clientId, mutationId, userId, digest, JSON.stringify(result)],
  );
}
