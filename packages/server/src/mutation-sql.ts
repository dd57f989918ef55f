import type { MutationResult } from './push.js';
import { call } from './script.js';
import type { Step } from './script.js';
import { CLIENT_SETTING, EXPECT_FUNCTION, QUIET_SETTING } from './setup.js';
import { scriptLiteral as lit } from './sql.js';

/**
 * The statements of a push's bookkeeping: the opening of each mutation's
 * transaction (the device's row, the ledger row, the predecessor), the
 * ledger's reads and corrections, and the record of refused rows.
 */

/**
 * The setting in which a pipelined batch leaves a mark as each of its
 * mutations opens (`batch:index`, set for the session): a setting made in
 * a transaction that rolls back is undone, so after a failure it names the
 * last mutation of the batch that committed.
 */
export const PIPELINE_SETTING = 'dovetail.pipelined';

/**
 * Opens a mutation's transaction, in one statement:
 * - locks the client's row (`$1`) until COMMIT, so one client's mutations
 *   go one at a time across requests and server instances, counts it, and
 *   names it (`$2`) as the client's last, which holds if the transaction
 *   commits (applied or refused; a replay rolls back);
 * - makes the transaction quiet: its writes do not signal the poke service
 *   commit by commit (see QUIET_SETTING), and names the client as the
 *   writer of its changes (CLIENT_SETTING);
 * - writes the mutation's ledger row (user `$4`, digest `$5`, result `$6`,
 *   numbered by the client's count), unless the ledger has the mutation
 *   already: `fresh` says which. The conflict is judged against every
 *   committed row, so a replay is seen even when another request recorded
 *   it while this one waited for the lock;
 * - says whether the predecessor `$3` (the mutation itself when it has
 *   none) is in the ledger. That is read in the statement's snapshot, from
 *   before any wait for the lock, so a predecessor committed meanwhile by
 *   another request of the same device is missed: the push then stops
 *   there, and the device sends the rest again.
 *
 * `claimed` is false if the client's row is missing (then nothing is written).
 * Two lookups of the whole ledger key, never one by `client_id` alone: see LEDGER_READ.
 */
function openingCte(marked: boolean): string {
  return `WITH claim AS (
    UPDATE _dovetail_clients SET seq = seq + 1, last_mutation = $2 WHERE client_id = $1
    RETURNING seq, set_config('${QUIET_SETTING}', 'on', true) AS quiet, set_config('${CLIENT_SETTING}', $1, true) AS client${marked ? `, set_config('${PIPELINE_SETTING}', $7, false) AS marker` : ''}),
  entry AS (
    INSERT INTO _dovetail_ledger (client_id, mutation_id, user_id, seq, digest, result)
    SELECT $1, $2, $4, claim.seq, $5, $6::jsonb FROM claim
    ON CONFLICT (client_id, mutation_id) DO NOTHING RETURNING 1)`;
}

/** The predecessor `$3` of mutation `$2` of client `$1` is in the ledger (or there is none: `$3` is `$2`). */
const PREV_HERE = `($3 = $2 OR EXISTS (SELECT 1 FROM _dovetail_ledger WHERE client_id = $1 AND mutation_id = $3))`;

export const OPEN_MUTATION = `${openingCte(false)}
  SELECT EXISTS (SELECT 1 FROM claim) AS claimed, EXISTS (SELECT 1 FROM entry) AS fresh, ${PREV_HERE} AS prev_here`;

/**
 * OPEN_MUTATION for a pipelined mutation (see pipeline.ts): the same
 * opening, which also leaves the batch's mark (`$7`), and which fails
 * (EXPECTATION_FAILED) unless the client's row was there, the mutation is
 * new and its predecessor is in the ledger.
 */
export const OPEN_EXPECTED = `${openingCte(true)}
  SELECT ${EXPECT_FUNCTION}(EXISTS (SELECT 1 FROM claim) AND EXISTS (SELECT 1 FROM entry) AND ${PREV_HERE})`;

/**
 * OPEN_MUTATION's answer again, for the same client (`$1`), mutation (`$2`)
 * and predecessor (`$3`), after a failure in the mutation's statements
 * rolled back to its savepoint: the ledger row is this transaction's own
 * if the opening wrote it.
 */
export const REOPEN_MUTATION = `SELECT l.mutation_id IS NOT NULL AS claimed, coalesce(l.xid = pg_current_xact_id(), false) AS fresh,
    ${PREV_HERE} AS prev_here
  FROM (SELECT 1) AS one LEFT JOIN _dovetail_ledger l ON l.client_id = $1 AND l.mutation_id = $2`;

/** A refused mutation's answer (`$3`) in place of the one OPEN_MUTATION wrote for mutation `$2` of client `$1`. */
export const LEDGER_REFUSED = `UPDATE _dovetail_ledger SET result = $3::jsonb WHERE client_id = $1 AND mutation_id = $2`;

/**
 * Locks and counts, as OPEN_MUTATION does, for the transaction that
 * records a mutation refused at COMMIT (see endFailed), whose ledger row
 * LEDGER_INSERT writes.
 */
export const CLAIM_CLIENT = `UPDATE _dovetail_clients SET seq = seq + 1, last_mutation = $2 WHERE client_id = $1
  RETURNING set_config('${QUIET_SETTING}', 'on', true) AS quiet, set_config('${CLIENT_SETTING}', $1, true) AS client`;

/**
 * The ledger rows of mutations `$2` and `$3` of client `$1` (the same row
 * twice when they are the same id). Two lookups of the whole key rather
 * than `mutation_id IN ($2, $3)`: the statement is prepared once per
 * connection, and a plan made while the ledger was small found the
 * client's rows by `client_id` alone and filtered them, which costs a
 * device with many mutations a scan of all of them at every push (0.6 ms
 * at 5,000).
 */
export const LEDGER_READ = `SELECT mutation_id, digest, result FROM _dovetail_ledger WHERE client_id = $1 AND mutation_id = $2
  UNION ALL SELECT mutation_id, digest, result FROM _dovetail_ledger WHERE client_id = $1 AND mutation_id = $3`;

/** The rows a refused mutation would have created (`$3`, a JSON array of ids) in table `$2`, for client `$1`. */
export const RECORD_REFUSED = `INSERT INTO _dovetail_refused (client_id, tbl, row_id)
  SELECT $1, $2, ids.id FROM jsonb_array_elements_text($3::jsonb) AS ids(id) ON CONFLICT DO NOTHING`;

/** The ledger row, numbered by the client row's count (which `CLAIM_CLIENT` moved on in this transaction). */
const LEDGER_INSERT = `INSERT INTO _dovetail_ledger (client_id, mutation_id, user_id, seq, digest, result)
  VALUES ($1, $2, $3, (SELECT seq FROM _dovetail_clients WHERE client_id = $1), $4, $5)`;

export function ledgerInsert(clientId: string, userId: string, mutationId: string, digest: string, result: MutationResult): Step {
  return call(LEDGER_INSERT, [lit(clientId), lit(mutationId), lit(userId), lit(digest), lit(JSON.stringify(result))]);
}
