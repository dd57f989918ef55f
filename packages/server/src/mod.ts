/**
 * @dovetail/server: the sync server. Postgres through `pg` or embedded
 * PGlite, push and pull over HTTP, pokes over WebSocket, JWT auth.
 *
 * @example
 * const sql = process.env.DATABASE_URL ? await postgresSql(process.env.DATABASE_URL) : await embeddedSql('./.dovetail-data');
 * const sync = new SyncServer({ schema, sql, authenticate: createAuthenticator({ secret: process.env.JWT_SECRET }) });
 * await sync.setup();
 * const server = await startHttpServer(sync, { port: 8787 });
 */
export { SyncServer, DEFAULT_LIMITS } from './sync-server.js';
export type { SyncServerOptions } from './sync-server.js';
export { startHttpServer } from './http.js';
export type { HttpServerOptions, RunningServer } from './http.js';
export { createAuthenticator } from './auth.js';
export type { AuthOptions, Authenticator, Identity } from './auth.js';
export { embeddedSql } from './sql-embedded.js';
export { postgresSql } from './sql-postgres.js';
export type { Isolation, Sql, SqlQueryable } from './sql.js';
export { ServerError } from './errors.js';
export { jsonLogger, silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export { defaultIdentityRow } from './identity.js';
export type { IdentityRow } from './identity.js';
export { pruneChanges } from './retention.js';
export type { PushLimits, MutationResult } from './push.js';
export { cursorSnapshot } from './pull-snapshot.js';
export type { Change, PullResult } from './pull.js';
export type { RateLimit } from './rate-limit.js';
export { changesChannel, currentSchema, ENGINE_TABLES } from './setup.js';
export { readCatalog } from './catalog.js';
export type { Catalog, CatalogColumn, CatalogForeignKey, CatalogIndex, CatalogOnDelete, CatalogTable, CatalogTrigger } from './catalog.js';
export { planMigration } from './migrate/plan.js';
export { applyMigration } from './migrate/apply.js';
export type { ApplyOptions } from './migrate/apply.js';
export { migrationStatus } from './migrate/status.js';
export { MigrationError } from './migrate/errors.js';
export type { MigrationErrorCode } from './migrate/errors.js';
export type {
  AppliedMigration,
  MigrationEvent,
  MigrationFailure,
  MigrationOutcome,
  MigrationPlan,
  MigrationStatus,
  MigrationStep,
  MigrationStepKind,
  RefusedChange,
  RefusedKind,
} from './migrate/types.js';
