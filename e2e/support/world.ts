import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import type { Schema } from '@dovetail/schema';
import { createClient, httpTransport } from '@dovetail/client';
import type { Database, DovetailClient, SyncOptions, WebSocketLike } from '@dovetail/client';
import { manualTimers } from './timers.js';
import { nodeDriver } from '@dovetail/client/node';
import { createAuthenticator, startHttpServer, SyncServer } from '@dovetail/server';
import { openServerSql } from './database.js';
import type { Logger, RunningServer, Sql } from '@dovetail/server';

export const SECRET = 'e2e-secret-long-enough-for-hs256-signing';

export async function tokenFor(sub: string, expiresIn: string | number = '1h'): Promise<string> {
  return new SignJWT({ role: 'authenticated', name: sub.toUpperCase() }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(SECRET));
}

export { manualTimers };


export interface Device<S extends Schema> {
  readonly name: string;
  readonly client: DovetailClient<S>;
  readonly directory: string;
  db: Database<S>;
  /** Signs in as `user` on this device (its own file), syncing through the world's server. */
  signIn(user: string, options?: Partial<SyncOptions>): Promise<Database<S>>;
  signOut(wipe?: boolean): Promise<void>;
}

export interface World<S extends Schema> {
  readonly schema: S;
  readonly sql: Sql;
  readonly server: RunningServer;
  readonly sync: SyncServer;
  readonly logs: string[];
  /** A device with no one signed in yet. */
  device(name: string): Device<S>;
  /** Signs `user` in on a new device. */
  deviceFor(user: string, options?: Partial<SyncOptions>): Promise<Device<S>>;
  /** Every row of a table on the server, by id. */
  rows(table: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** A server (real HTTP, real Postgres or PGlite) and devices with real SQLite files. */
export async function createWorld<S extends Schema>(schema: S, options: { maxBodyBytes?: number } = {}): Promise<World<S>> {
  const { sql, close: closeSql } = await openServerSql('e2e');
  const logs: string[] = [];
  const log: Logger = {
    info: (m, f) => void logs.push(JSON.stringify({ m, ...f })),
    warn: (m, f) => void logs.push(JSON.stringify({ m, ...f })),
    error: (m, f) => void logs.push(JSON.stringify({ level: 'error', m, ...f })),
  };
  const sync = new SyncServer({ schema, sql, authenticate: createAuthenticator({ secret: SECRET }), log });
  await sync.setup();
  const server = await startHttpServer(sync, { rateLimit: { perSecond: 10_000, burst: 10_000 }, ...options });
  const dirs: string[] = [];
  const devices: Device<S>[] = [];

  const device = (name: string): Device<S> => {
    const directory = mkdtempSync(join(tmpdir(), `dovetail-e2e-${name}-`));
    dirs.push(directory);
    const client = createClient({ schema, driver: nodeDriver({ directory }) });
    const d: Device<S> = {
      name,
      client,
      directory,
      db: undefined as unknown as Database<S>,
      async signIn(user, options = {}) {
        const transport = httpTransport({ url: server.url, webSocket: WebSocket as unknown as new (u: string) => WebSocketLike, reconnectMs: 50 });
        d.db = await client.bind({
          userId: user,
          sync: { transport, getToken: () => tokenFor(user), refreshToken: () => tokenFor(user), timers: manualTimers, ...options },
        });
        return d.db;
      },
      signOut: (wipe = false) => client.signOut({ wipe }),
    };
    devices.push(d);
    return d;
  };

  return {
    schema,
    sql,
    server,
    sync,
    logs,
    device,
    async deviceFor(user, options) {
      const d = device(`${user}-${devices.length}`);
      await d.signIn(user, options);
      return d;
    },
    rows: (table) => sql.query(`SELECT * FROM "${table}" ORDER BY 1`),
    async close() {
      for (const d of devices) await d.client.signOut().catch(() => undefined);
      await server.close();
      await closeSql();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Log lines that report SQLSTATE 23503 from Postgres (invariant 2). Matched
 * on the field, not on the text: a random id may contain the digits.
 */
export function foreignKeyErrors(lines: readonly string[]): string[] {
  return lines.filter((line) => /"sqlstate":"23503"/.test(line));
}
