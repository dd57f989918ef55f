import { quoteIdent as q } from '@dovetail/schema';
import type { Schema, TableModel } from '@dovetail/schema';
import type { Identity } from './auth.js';
import { ServerError } from './errors.js';
import { sqlStateOf } from './sql.js';
import type { Sql } from './sql.js';

/** Columns of a user's identity row, from their token's claims (the id is added). */
export type IdentityRow = (identity: Identity) => Record<string, unknown>;

/** Takes `name` from the claims (`name`, `user_metadata.full_name`, or `email`) when the table has such a column. */
export const defaultIdentityRow: IdentityRow = ({ claims }) => {
  const meta = (claims['user_metadata'] ?? {}) as Record<string, unknown>;
  const name = claims['name'] ?? meta['full_name'] ?? meta['name'] ?? claims['email'];
  return typeof name === 'string' ? { name } : {};
};

/**
 * Admits a push or pull: the client id must belong to this user (I1: a
 * device database pushes only under its own user's token), and the user's
 * identity row must exist before anything of theirs is applied (G14). Both
 * are looked up in one query; most requests come from users and clients
 * the server knows, so nothing is written (and nothing announced) then.
 * The first push of a client id registers it to this user (its
 * `_dovetail_clients` row, which every pushed mutation then updates); a
 * pull claims nothing.
 */
export async function admit(sql: Sql, schema: Schema, identity: Identity, identityRow: IdentityRow, clientId: string, kind: 'push' | 'pull'): Promise<void> {
  const [found] = await sql.query<{ known: boolean; owner: string | null }>(`SELECT ${admissionColumns(schema, '$1', '$2')}`, [identity.userId, clientId]);
  let owner = found?.owner ?? null;
  if (owner === null && kind === 'push') {
    // Two first requests may race: whichever registers first owns the id
    // (read back in a statement of its own, which sees the other's commit).
    await sql.query('INSERT INTO _dovetail_clients (client_id, user_id) VALUES ($1, $2) ON CONFLICT (client_id) DO NOTHING', [clientId, identity.userId]);
    const [row] = await sql.query<{ owner: string }>('SELECT user_id AS owner FROM _dovetail_clients WHERE client_id = $1', [clientId]);
    owner = row?.owner ?? null;
  }
  if (owner !== null ? owner !== identity.userId : kind === 'push') throw clientOfAnotherUser();
  if (!found?.known) await createIdentity(sql, schema, identity, identityRow);
}

/**
 * What admits a request, as the columns of a SELECT: whether the identity
 * row of the user (SQL expression `user`) exists (`known`), and the user
 * the client id (`client`) is registered to, if any (`owner`).
 */
export function admissionColumns(schema: Schema, user: string, client: string): string {
  const table = schema.identity;
  return `EXISTS (SELECT 1 FROM ${q(table.name)} WHERE ${q(table.primaryKey)} = ${user}) AS known,
          (SELECT user_id FROM _dovetail_clients WHERE client_id = ${client}) AS owner`;
}

/** A request for a client id that another user's device registered (I1). */
export function clientOfAnotherUser(): ServerError {
  return new ServerError('forbidden', "this client id belongs to another user; a device database pushes only under its own user's token");
}

/** The identity row from the token's claims. Only columns the table has are written; a row that appeared meanwhile is left as it is. */
async function createIdentity(sql: Sql, schema: Schema, identity: Identity, identityRow: IdentityRow): Promise<void> {
  const table = schema.identity;
  const known = new Set(table.columns.map((c) => c.name));
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(identityRow(identity))) if (known.has(k) && v !== undefined) values[k] = v;
  values[table.primaryKey] = identity.userId;
  for (const c of table.columns) {
    if (c.nullable || c.hasDefault || values[c.name] !== undefined) continue;
    // A required column the claims do not fill gets a neutral value; a
    // unique text one (a handle) gets the user id, which no one else has.
    values[c.name] = c.kind === 'text' ? (c.unique ? identity.userId : '') : c.kind === 'boolean' ? false : c.kind === 'json' ? {} : 0;
  }
  const cols = Object.keys(values);
  try {
    await insertIdentity(sql, table, cols, values);
  } catch (error) {
    const state = sqlStateOf(error);
    if (!state?.startsWith('23')) throw error;
    throw new ServerError(
      'internal',
      `the identity row ${table.name} '${identity.userId}' could not be created from the token (${error instanceof Error ? error.message : String(error)}); ` +
        `give the column a default or make it nullable, or fill it from the claims with the server's identityRow option`,
    );
  }
}

async function insertIdentity(sql: Sql, table: TableModel, cols: readonly string[], values: Record<string, unknown>): Promise<void> {
  await sql.query(
    `INSERT INTO ${q(table.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map((c, i) => (table.columns.find((x) => x.name === c)?.kind === 'json' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ')}) ON CONFLICT (${q(table.primaryKey)}) DO NOTHING`,
    cols.map((c) => (table.columns.find((x) => x.name === c)?.kind === 'json' ? JSON.stringify(values[c]) : values[c])),
  );
}
