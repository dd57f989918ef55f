import { createAuthenticator, jsonLogger, planMigration, pruneChanges, readCatalog, startHttpServer, SyncServer } from '@dovetail/server';
import type { Authenticator, Logger, RunningServer } from '@dovetail/server';
import type { Schema } from '@dovetail/schema';
import type { Command } from '../command.js';
import { openDatabase } from '../database.js';
import type { OpenDatabase } from '../database.js';
import { parseDuration } from '../duration.js';
import { CliError } from '../errors.js';
import type { CliIo } from '../io.js';
import { loadSchema } from '../load-module.js';
import { numberOption, stringOption } from '../options.js';
import type { OptionValues } from '../options.js';
import { databaseUrlOption, dataDirOption, hostOption, jwksUrlOption, jwtSecretOption, portOption, retentionOption, schemaOption } from '../option-specs.js';

export const serveOptions = [schemaOption, databaseUrlOption, dataDirOption, portOption, hostOption, jwtSecretOption, jwksUrlOption, retentionOption] as const;

export interface Serving {
  readonly schema: Schema;
  readonly database: OpenDatabase;
  readonly sync: SyncServer;
  readonly server: RunningServer;
  readonly log: Logger;
  close(): Promise<void>;
}

/** How often old deletions are pruned (they are kept for `--retention`). */
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/**
 * Loads the schema, opens the database, prepares it (tables where missing,
 * engine tables, capture triggers) and listens. Shared by serve and dev.
 */
export async function startServing(values: OptionValues, io: CliIo, authenticate: Authenticator): Promise<Serving> {
  const schema = await loadSchema(stringOption(values, 'schema'), io.cwd);
  const retentionMs = parseDuration(stringOption(values, 'retention') ?? '30d', '--retention');
  const log = jsonLogger((line) => io.stdout.write(line + '\n'));
  const database = await openDatabase(values, io.cwd);
  let server: RunningServer | undefined;
  try {
    const sync = new SyncServer({ schema, sql: database.sql, authenticate, log });
    await sync.setup();
    // Setup creates what is missing; changes to existing tables are
    // migrate's job, and serving a database that lags the schema fails in
    // ways that are hard to read later. Say so now.
    const plan = planMigration(schema, await readCatalog(database.sql));
    if (plan.steps.length > 0 || plan.refused.length > 0) {
      log.warn("the database differs from the schema; run 'dovetail migrate plan' to see how, and 'dovetail migrate apply' to catch up", {
        pending: plan.steps.map((step) => step.id),
        refused: plan.refused.map((r) => r.id),
      });
    }
    await pruneChanges(database.sql, retentionMs);
    server = await startHttpServer(sync, { port: numberOption(values, 'port') ?? 8787, host: stringOption(values, 'host') ?? '127.0.0.1' });
    const running = server;
    const pruning = setInterval(() => {
      pruneChanges(database.sql, retentionMs).then(
        (n) => n > 0 && log.info('pruned old changes', { count: n }),
        (error: unknown) => log.warn('pruning old changes failed; will retry', { error: String(error) }),
      );
    }, PRUNE_EVERY_MS);
    pruning.unref();
    log.info('listening', { url: running.url, database: database.description, schemaVersion: schema.version, tables: schema.tables.length });
    return {
      schema,
      database,
      sync,
      server: running,
      log,
      async close() {
        clearInterval(pruning);
        await running.close();
        await database.sql.close();
        log.info('stopped');
      },
    };
  } catch (error) {
    await server?.close().catch(() => undefined);
    await database.sql.close().catch(() => undefined);
    if (error instanceof CliError) throw error;
    throw new CliError('cannot_run', `the server could not start: ${error instanceof Error ? error.message : String(error)}`, 'check the database and the port; `dovetail doctor <database>` diagnoses the database');
  }
}

/** Resolves when the process is asked to stop. */
export function untilStopped(io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    if (!io.stop) return;
    if (io.stop.aborted) resolve();
    else io.stop.addEventListener('abort', () => resolve(), { once: true });
  });
}

export function authenticatorFrom(values: OptionValues, fallbackSecret?: string): Authenticator {
  const secret = stringOption(values, 'jwt-secret') ?? fallbackSecret;
  const jwksUrl = stringOption(values, 'jwks-url');
  if (secret && jwksUrl) throw new CliError('usage', 'both --jwt-secret and --jwks-url are set', 'give one: the HS256 secret or the JWKS URL your tokens are signed with');
  if (!secret && !jwksUrl) throw new CliError('usage', 'no way to check tokens: neither --jwt-secret nor --jwks-url is set', 'set JWT_SECRET (e.g. your Supabase JWT secret) or DOVETAIL_JWKS_URL; `dovetail dev` makes a secret for you');
  if (secret !== undefined && secret.length < 32) throw new CliError('usage', `the JWT secret is ${secret.length} characters long; HS256 needs at least 32`, 'use a long random secret (e.g. `openssl rand -hex 32`)');
  return createAuthenticator(jwksUrl ? { jwksUrl } : { secret: secret ?? '' });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the sync server for a schema',
  usage: 'serve --schema <path> [options]',
  details: `Serves push, pull and pokes over HTTP and WebSocket. Logs are JSON lines on stdout.
Missing tables are created on start; changes to existing tables are 'dovetail migrate'.

examples:
  JWT_SECRET=... dovetail serve --schema ./schema.ts
  dovetail serve --schema ./schema.ts --database-url postgres://app@db/app --jwks-url https://<project>.supabase.co/auth/v1/.well-known/jwks.json`,
  options: serveOptions,
  async run(parsed, io) {
    const serving = await startServing(parsed.values, io, authenticatorFrom(parsed.values));
    await untilStopped(io);
    await serving.close();
    return 0;
  },
};
