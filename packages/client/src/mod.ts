/**
 * @dovetail/client: the engine on the device. Foreign keys on, always.
 *
 * Drivers are separate entry points: `@dovetail/client/node` (better-sqlite3).
 * The driver contract suite is `@dovetail/client/driver-contract`.
 */
export { createClient, DovetailClient } from './client.js';
export type { BindOptions, ClientEvents, ClientOptions, LifecycleState, SignOutOptions } from './client.js';
export { Database } from './database.js';
export type { Clock, DatabaseEvents, MutationBuilder } from './database.js';
export { DovetailError, ForeignKeyViolation, describeViolation } from './errors.js';
export type { KeyViolation } from './errors.js';
export { SqliteDriverError } from './driver.js';
export type { RunResult, SqliteConnection, SqliteDriver, SqlRow, SqlValue } from './driver.js';
export { databaseFileName } from './file-name.js';
/** The engine's own tables and meta keys in a device file (its file format, read by `dovetail doctor`). */
export { ENGINE_VERSION, META as ENGINE_META_TABLE, OUTBOX as ENGINE_OUTBOX_TABLE, REJECTED as ENGINE_REJECTED_TABLE, MetaKey } from './engine-tables.js';
export { normalizeOutbox } from './outbox/normalize.js';
export type { NormalizeResult, OutboxEntry } from './outbox/normalize.js';
export { planMigration, snapshotOf } from './migrate/plan.js';
export type { MigrationStep, SchemaSnapshot } from './migrate/plan.js';
export type { MigrationProgress, MigrationReport } from './migrate/apply.js';
export type { LiveQueryOptions } from './live/live-queries.js';
export type { Mutation, Op, RowValues, Value } from '@dovetail/protocol';
export type { Emitter } from './emitter.js';
export { SyncRunner } from './sync/runner.js';
export { systemTimers } from './sync/timers.js';
export type { SyncEvents, SyncOptions, SyncReport, Timers } from './sync/runner.js';
export { httpTransport, TransportError } from './sync/transport.js';
export type { HttpTransportOptions, PokeHandlers, SyncTransport, WebSocketLike } from './sync/transport.js';
export type { RejectedMutation } from './sync/sync-store.js';
