import { quoteIdent as q } from '@dovetail/schema';
import type { SqlQueryable } from '@dovetail/server';
import type { Expected } from '../expected.js';
import { plural } from '../format.js';
import type { IdentityToCreate } from '../plan-rows.js';
import type { DbShape } from '../shape.js';
import type { Finding } from '../types.js';

/** A user's name the way the server's default identity row takes it from claims. */
function nameOf(user: Record<string, unknown>): string | undefined {
  const meta = (user['raw_user_meta_data'] ?? user['user_metadata'] ?? {}) as Record<string, unknown>;
  const name = user['name'] ?? meta['full_name'] ?? meta['name'] ?? user['email'];
  return typeof name === 'string' ? name : undefined;
}

/**
 * Users that exist in the auth provider's table (`<authSchema>.users`, as
 * Supabase keeps them) without an identity row: their first write that
 * points at their profile fails. Soft-deleted users (`deleted_at`) are left
 * out.
 */
export async function authUsersWithoutIdentity(
  sql: SqlQueryable,
  shape: DbShape,
  expected: Expected | undefined,
  authSchema: string,
  maxListed: number,
): Promise<{ findings: Finding[]; create?: IdentityToCreate }> {
  const users = `${q(authSchema)}.${q('users')}`;
  const [exists] = await sql.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [users]);
  if (!exists?.t) return { findings: [] };
  const identity = expected?.identity;
  if (!identity) {
    return { findings: [{ code: 'not_checked', severity: 'warning', message: `${authSchema}.users exists, but without --schema the doctor does not know the identity table, so users without one were not looked for`, details: { what: 'identity rows of auth users' } }] };
  }
  const column = shape.tables.get(identity.table)?.columns.get(identity.column);
  if (!column) return { findings: [] };
  const match = column.type === 'text' ? `p.${q(identity.column)} = u.id::text` : `p.${q(identity.column)}::text = u.id::text`;
  const from = `FROM ${users} AS u WHERE (to_jsonb(u) ->> 'deleted_at') IS NULL AND NOT EXISTS (SELECT 1 FROM ${q(identity.table)} AS p WHERE ${match})`;
  const rows = await sql.query<{ u: Record<string, unknown>; total: number }>(`SELECT to_jsonb(u) AS u, (count(*) OVER ())::int AS total ${from} ORDER BY u.id LIMIT $1`, [maxListed]);
  const count = rows[0]?.total ?? 0;
  if (count === 0) return { findings: [] };
  const found = rows.map((r) => ({ id: String(r.u['id']), ...(nameOf(r.u) === undefined ? {} : { name: nameOf(r.u) as string }) }));
  return {
    findings: [
      {
        code: 'missing_identity_row',
        severity: 'problem',
        message: `${plural(count, 'user')} of ${authSchema}.users ${count === 1 ? 'has' : 'have'} no row in ${identity.table} (such as '${found[0]?.id ?? ''}'), so their first write that points at ${identity.table} fails with a key error; \`dovetail doctor --fix\` creates the rows with the schema's defaults (the sync server also creates one from the token on each user's first push)`,
        details: { table: identity.table, column: identity.column, userIds: found.map((u) => u.id), count, source: 'auth_users' },
      },
    ],
    create: { table: identity.table, column: identity.column, users: found },
  };
}
