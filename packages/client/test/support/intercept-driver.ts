import type { SqliteConnection, SqliteDriver } from '@dovetail/client';

export interface Interceptor {
  /**
   * Sees every statement before it runs (exec, run, all, runMany). Return
   * `'skip'` to pretend it ran without running it (exec only).
   */
  readonly before?: (sql: string) => 'skip' | undefined;
  /** Runs on the real connection just before it closes. */
  readonly beforeClose?: (conn: SqliteConnection) => Promise<void>;
}

/** A driver over `real` whose connections report (and may skip) statements. */
export function interceptDriver(real: SqliteDriver, hooks: Interceptor): SqliteDriver {
  const wrap = (conn: SqliteConnection): SqliteConnection => ({
    exec: (sql) => (hooks.before?.(sql) === 'skip' ? Promise.resolve() : conn.exec(sql)),
    run: (sql, params) => (hooks.before?.(sql), conn.run(sql, params)),
    all: (sql, params) => (hooks.before?.(sql), conn.all(sql, params)),
    runMany: (sql, list) => (hooks.before?.(sql), conn.runMany(sql, list)),
    close: async () => {
      await hooks.beforeClose?.(conn);
      await conn.close();
    },
  });
  return {
    name: real.name,
    open: async (file) => wrap(await real.open(file)),
    remove: (file) => real.remove(file),
    exists: (file) => real.exists(file),
  };
}
