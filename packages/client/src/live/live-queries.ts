import type { SqlRow, SqlValue } from '../driver.js';

export interface LiveQueryOptions<R> {
  /** The tables to watch; found from the query plan when left out. */
  readonly tables?: readonly string[];
  /** Called with the first result and with every result that differs. */
  readonly onData: (rows: R[]) => void;
  /** Called when a re-run fails; the query stays subscribed. */
  readonly onError?: (error: unknown) => void;
}

interface Subscription {
  readonly sql: string;
  readonly params: readonly SqlValue[];
  tables: ReadonlySet<string> | undefined;
  last: string | undefined;
  running: boolean;
  dirty: boolean;
  active: boolean;
  readonly onData: (rows: SqlRow[]) => void;
  readonly onError: ((error: unknown) => void) | undefined;
}

export interface QueryRunner {
  all(sql: string, params: readonly SqlValue[]): Promise<SqlRow[]>;
  tablesReadBy(sql: string, params: readonly SqlValue[]): Promise<Set<string>>;
}

/**
 * Live queries: each re-runs after a commit that changed a table it reads,
 * and delivers only when its rows differ. Notifications are only ever sent
 * after COMMIT, so a live query never shows a rolled-back write.
 */
export class LiveQueries {
  readonly #runner: QueryRunner;
  readonly #subs = new Set<Subscription>();

  constructor(runner: QueryRunner) {
    this.#runner = runner;
  }

  get size(): number {
    return this.#subs.size;
  }

  subscribe<R extends SqlRow>(sql: string, params: readonly SqlValue[], options: LiveQueryOptions<R>): () => void {
    const sub: Subscription = {
      sql,
      params,
      tables: options.tables ? new Set(options.tables) : undefined,
      last: undefined,
      running: false,
      dirty: true,
      active: true,
      onData: options.onData as (rows: SqlRow[]) => void,
      onError: options.onError,
    };
    this.#subs.add(sub);
    void this.#run(sub);
    return () => {
      sub.active = false;
      this.#subs.delete(sub);
    };
  }

  /** Tells live queries that these tables changed in a committed transaction. */
  notify(tables: Iterable<string>): void {
    const changed = new Set(tables);
    for (const sub of this.#subs) {
      if (sub.tables && ![...sub.tables].some((t) => changed.has(t))) continue;
      sub.dirty = true;
      void this.#run(sub);
    }
  }

  clear(): void {
    for (const sub of this.#subs) sub.active = false;
    this.#subs.clear();
  }

  async #run(sub: Subscription): Promise<void> {
    if (sub.running) return;
    sub.running = true;
    try {
      while (sub.dirty && sub.active) {
        sub.dirty = false;
        try {
          sub.tables ??= await this.#runner.tablesReadBy(sub.sql, sub.params);
          const rows = await this.#runner.all(sub.sql, sub.params);
          const text = JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
          if (text !== sub.last && sub.active) {
            sub.last = text;
            sub.onData(rows);
          }
        } catch (error) {
          if (sub.active) sub.onError?.(error);
        }
      }
    } finally {
      sub.running = false;
    }
  }
}
