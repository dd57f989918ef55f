import { createHash } from 'node:crypto';
import type { SqlSession } from './sql.js';

/**
 * A statement of a script: plain SQL (one statement), or a parameterized
 * statement with its arguments as SQL literals (`scriptLiteral`), which
 * runs as a prepared statement of the connection: parsed and planned once
 * per connection rather than at every run. (Planning the statements of a
 * pushed mutation cost Postgres more than executing them.)
 */
export type Step = string | Call;

export interface Call {
  /** The statement, with `$1`, `$2`... for its arguments; its result columns named, never `*` (a table that gains a column must not change a prepared statement's result). */
  readonly text: string;
  /** SQL literals, one per parameter. */
  readonly args: readonly string[];
}

export function call(text: string, args: readonly string[]): Call {
  return { text, args };
}

/** The prefix of the engine's prepared statements, so they are told apart from the driver's and the app's. */
export const PREPARED_PREFIX = 'dovetail_';

const names = new Map<string, string>();

function nameOf(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = PREPARED_PREFIX + createHash('sha1').update(text).digest('hex').slice(0, 24);
    if (names.size < 10_000) names.set(text, name);
  }
  return name;
}

/**
 * Runs `steps` as one script (one round trip): each call is prepared on the
 * connection first if it is not already, then executed. Resolves to the
 * rows of each step, in order.
 */
export async function runScript(s: SqlSession, steps: readonly Step[]): Promise<Record<string, unknown>[][]> {
  const prepared = s.prepared;
  if (prepared.stale) {
    const rows = await s.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE starts_with(name, '${PREPARED_PREFIX}')`);
    prepared.reset(rows.map((r) => r.name));
  }
  const names = steps.map((step) => (typeof step === 'string' ? undefined : nameOf(step.text)));
  const used = new Set(names.filter((name): name is string => name !== undefined));
  /** Not prepared on this connection yet: prepared in this script, before their first use. */
  const fresh = new Set([...used].filter((name) => !prepared.has(name)));
  const evicted = prepared.evictions(fresh.size, used);
  const parts = evicted.map((name) => `DEALLOCATE ${name}`);
  const kept: number[] = [];
  steps.forEach((step, i) => {
    if (typeof step === 'string') {
      kept.push(parts.push(step) - 1);
      return;
    }
    const name = names[i] as string;
    if (fresh.delete(name)) parts.push(`PREPARE ${name} AS ${step.text}`);
    kept.push(parts.push(step.args.length > 0 ? `EXECUTE ${name}(${step.args.join(', ')})` : `EXECUTE ${name}`) - 1);
  });
  let results: Record<string, unknown>[][];
  try {
    results = await s.script(parts.join(';\n'));
  } catch (error) {
    // What this script prepared or let go of is unknown now, and a
    // statement may be missing that was thought prepared (a connection
    // reset behind the driver's back): read them back before the next.
    prepared.stale = true;
    throw error;
  }
  for (const name of evicted) prepared.forget(name);
  for (const name of used) prepared.use(name);
  return kept.map((i) => results[i] ?? []);
}
