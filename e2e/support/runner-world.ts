import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, TransportError } from '@dovetail/client';
import type { Database, DovetailClient, SyncOptions } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { createAuthenticator, SyncServer } from '@dovetail/server';
import type { PushLimits, Sql } from '@dovetail/server';
import { openServerSql } from './database.js';
import { e2eSchema } from './schema.js';
import type { E2eSchema } from './schema.js';
import { Switchboard } from './switchboard.js';
import { VirtualTime } from './virtual-time.js';
import { SECRET, tokenFor } from './world.js';

/**
 * Devices whose sync runner the test drives: real device files and a real
 * server in the same process; time and the network are the test's
 * (VirtualTime, Switchboard). For the runner's scheduling tests.
 */

export const INTERVAL = 30_000;
/** With `random` at 0.5, a backoff of `base` waits three quarters of it. */
export const backoff = (failures: number): number => Math.round(Math.min(60_000, 500 * 2 ** (failures - 1)) * 0.75);

export const networkDown = (): TransportError => new TransportError('network', 0, 'network error: unreachable');
export const unavailable = (): TransportError => new TransportError('internal', 503, 'the server is unavailable');
export const rateLimited = (ms: number): TransportError => new TransportError('rate_limited', 429, 'too many requests', ms);
export const tokenExpired = (): TransportError => new TransportError('token_expired', 401, 'the token has expired; refresh it and retry');

export interface TestDevice {
  readonly time: VirtualTime;
  readonly board: Switchboard;
  readonly client: DovetailClient<E2eSchema>;
  readonly db: Database<E2eSchema>;
  readonly user: string;
  /** Moves time on by `ms`, then waits for what that started to finish. */
  advance(ms: number): Promise<void>;
  write(): Promise<void>;
  pulls(): number;
}

export interface RunnerWorld {
  readonly sql: Sql;
  /** A device of a user of its own, bound, its first sync due now; on a server with `limits` if given. */
  device(options?: Partial<SyncOptions>, limits?: Partial<PushLimits>): Promise<TestDevice>;
  close(): Promise<void>;
}

export async function createRunnerWorld(prefix: string): Promise<RunnerWorld> {
  const { sql, close: closeSql } = await openServerSql(prefix);
  const server = new SyncServer({ schema: e2eSchema, sql, authenticate: createAuthenticator({ secret: SECRET }) });
  await server.setup();
  const dirs: string[] = [];
  const clients: DovetailClient<E2eSchema>[] = [];
  let users = 0;
  return {
    sql,
    async device(options = {}, limits) {
      const user = `${prefix}-${process.pid}-${++users}`;
      const time = new VirtualTime();
      const on = limits ? new SyncServer({ schema: e2eSchema, sql, authenticate: createAuthenticator({ secret: SECRET }), limits }) : server;
      const board = new Switchboard(on, () => time.steady());
      const directory = mkdtempSync(join(tmpdir(), `dovetail-${prefix}-`));
      dirs.push(directory);
      const client = createClient({ schema: e2eSchema, driver: nodeDriver({ directory }), clock: time });
      clients.push(client);
      const token = await tokenFor(user);
      const db = await client.bind({
        userId: user,
        sync: { transport: board.transport(), getToken: () => token, refreshToken: () => Promise.resolve(token), timers: time, random: () => 0.5, intervalMs: INTERVAL, ...options },
      });
      let written = 0;
      return {
        time,
        board,
        client,
        db,
        user,
        async advance(ms) {
          time.advance(ms);
          await db.sync.whenIdle();
        },
        async write() {
          const id = `${user}-p${++written}`;
          await db.mutate('project', (m) => m.insert('projects', { id, owner_id: user, title: id, public: false }));
        },
        pulls: () => board.calls.filter((c) => c.kind === 'pull').length,
      };
    },
    async close() {
      for (const c of clients) await c.signOut().catch(() => undefined);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await closeSql();
    },
  };
}
