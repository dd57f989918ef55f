/**
 * Child process of first-sync-crash.test.ts: binds a device, starts its
 * first sync from the server at argv[3], and kills itself (SIGKILL, no
 * cleanup) just before the statement that matches argv[5] runs for the
 * argv[6]-th time.
 */
import WebSocket from 'ws';
import { createClient, httpTransport } from '@dovetail/client';
import type { SqliteConnection, SqliteDriver, WebSocketLike } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { manualTimers } from './timers.js';
import { e2eSchema } from './schema.js';

const [directory, url, token, pattern, nth] = process.argv.slice(2);
if (!directory || !url || !token || !pattern || !nth) throw new Error('usage: sync-then-crash <dir> <url> <token> <sql prefix> <n>');
let seen = 0;
const real = nodeDriver({ directory });
/** `meta:<key>` matches the write of that engine setting (e.g. `meta:cursor`); anything else is a SQL prefix. */
const matches = (sql: string, params: readonly unknown[] | undefined): boolean =>
  pattern.startsWith('meta:') ? sql.startsWith('INSERT INTO _dovetail_meta') && params?.[0] === pattern.slice(5) : sql.startsWith(pattern);
/** `rows` counts each row of a batch: the kill comes before the batch that would reach the n-th row. */
const check = (sql: string, params?: readonly unknown[], rows = 1): void => {
  if (!matches(sql, params)) return;
  const before = seen;
  seen += rows;
  if (before < Number(nth) && seen >= Number(nth)) {
    process.stdout.write(`crashing before statement ${seen}: ${sql.slice(0, 60)}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
};
const driver: SqliteDriver = {
  ...real,
  async open(file) {
    const c = await real.open(file);
    const wrapped: SqliteConnection = {
      exec: (sql) => (check(sql), c.exec(sql)),
      run: (sql, params) => (check(sql, params), c.run(sql, params)),
      all: (sql, params) => (check(sql), c.all(sql, params)),
      runMany: (sql, list) => (check(sql, list[0], list.length), c.runMany(sql, list)),
      close: () => c.close(),
    };
    return wrapped;
  },
};
const client = createClient({ schema: e2eSchema, driver });
const db = await client.bind({
  userId: 'olga',
  sync: { transport: httpTransport({ url, webSocket: WebSocket as unknown as new (u: string) => WebSocketLike }), getToken: () => token, timers: manualTimers },
});
await db.sync.syncNow();
process.stdout.write('sync finished without a crash\n');
await client.signOut();
