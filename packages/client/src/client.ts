import { quoteIdent as q } from '@dovetail/schema';
import type { Insert, Schema, TableName } from '@dovetail/schema';
import { bootDatabase } from './boot.js';
import { Database } from './database.js';
import type { Clock } from './database.js';
import type { SqliteConnection, SqliteDriver, SqlValue } from './driver.js';
import { MetaKey, readMeta, writeMeta } from './engine-tables.js';
import { DovetailError } from './errors.js';
import { Emitter } from './emitter.js';
import { checkUserId, databaseFileName } from './file-name.js';
import { migrate } from './migrate/apply.js';
import type { MigrationProgress, MigrationReport } from './migrate/apply.js';
import { SerialConnection } from './serial-connection.js';
import { TableCodec } from './write/codec.js';
import type { SyncOptions } from './sync/runner.js';

/**
 * Where the client is in its lifecycle. Bind walks forwards through
 * booting (open, keys on), migrating (schema) and binding (owner, identity
 * row); sign-out walks back.
 */
export type LifecycleState = 'signed_out' | 'booting' | 'migrating' | 'binding' | 'bound' | 'signing_out';

export interface ClientOptions<S extends Schema> {
  readonly schema: S;
  readonly driver: SqliteDriver;
  readonly clock?: Clock;
  /** Makes mutation and client ids. Default: `crypto.randomUUID()`. */
  readonly newId?: () => string;
}

export interface BindOptions<S extends Schema> {
  /** The signed-in user (for a JWT, its `sub`). */
  readonly userId: string;
  /**
   * Columns for the user's identity row, used only if the row does not exist
   * yet on this device. Required columns without defaults must be given.
   */
  readonly identity?: Partial<Omit<Insert<S, TableName<S>>, never>> & Record<string, unknown>;
  /** Reports each migration step on a schema upgrade. */
  readonly onMigrationProgress?: (progress: MigrationProgress) => void;
  /** Sync with a server: the transport and the user's token. Without it the database stays local. */
  readonly sync?: SyncOptions;
}

export interface SignOutOptions {
  /** Delete the user's database file (and its unsynced mutations). Default false. */
  readonly wipe?: boolean;
}

export interface ClientEvents {
  state: LifecycleState;
}

/**
 * The one owner of auth state on a device. Nothing opens a database
 * implicitly: `bind()` opens the signed-in user's own file, `signOut()`
 * closes it. Using `db` outside a binding throws `not_bound`.
 *
 * @example
 * const client = createClient({ schema, driver: nodeDriver({ directory: './data' }) });
 * const db = await client.bind({ userId: 'u_ann', identity: { name: 'Ann' } });
 * await db.mutate('createPost', (m) => m.insert('posts', { id: 'p1', author_id: 'u_ann', body: 'hi' }));
 * await client.signOut();
 */
export class DovetailClient<S extends Schema = Schema> {
  readonly events = new Emitter<ClientEvents>();
  readonly #schema: S;
  readonly #driver: SqliteDriver;
  readonly #clock: Clock;
  readonly #newId: () => string;
  #state: LifecycleState = 'signed_out';
  #conn: SerialConnection | undefined;
  #db: Database<S> | undefined;
  #lastMigration: MigrationReport | undefined;

  constructor(options: ClientOptions<S>) {
    this.#schema = options.schema;
    this.#driver = options.driver;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#newId = options.newId ?? (() => crypto.randomUUID());
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** The bound user's database; throws `not_bound` otherwise. */
  get db(): Database<S> {
    if (this.#state !== 'bound' || !this.#db) {
      throw new DovetailError('not_bound', `the database is not available: the client is '${this.#state}'`);
    }
    return this.#db;
  }

  /** What the last bind migrated (undefined before the first bind). */
  get lastMigration(): MigrationReport | undefined {
    return this.#lastMigration;
  }

  /** The file name this user's database lives in. */
  fileNameFor(userId: string): string {
    return databaseFileName(userId);
  }

  #setState(state: LifecycleState): void {
    this.#state = state;
    this.events.emit('state', state);
  }

  /**
   * Opens the user's database and makes it ready: boot (file, WAL, keys on
   * and verified, engine tables, owner check), schema (migrations), bind
   * (owner stamp, identity row). On failure everything is closed again and
   * the client is signed out.
   */
  async bind(options: BindOptions<S>): Promise<Database<S>> {
    if (this.#state !== 'signed_out') {
      throw new DovetailError('lifecycle_busy', `bind() called while the client is '${this.#state}'; sign out first`);
    }
    checkUserId(options.userId);
    const userId = options.userId;
    this.#setState('booting');
    let conn: SqliteConnection | undefined;
    try {
      conn = await bootDatabase(this.#driver, databaseFileName(userId));
      const owner = await readMeta(conn, MetaKey.Owner);
      if (owner !== undefined && owner !== userId) {
        throw new DovetailError('wrong_owner', `this database file belongs to another user, not to '${userId}'; it was not opened`);
      }
      this.#setState('migrating');
      const migrateOptions = options.onMigrationProgress;
      this.#lastMigration = await migrate(conn, this.#schema.model, this.#driver.name, migrateOptions);
      this.#setState('binding');
      const clientId = await this.#stampOwner(conn, userId);
      await this.#ensureIdentity(conn, userId, options.identity ?? {});
      const serial = new SerialConnection(conn);
      this.#conn = serial;
      this.#db = new Database({ conn: serial, schema: this.#schema, userId, clientId, clock: this.#clock, newId: this.#newId, ...(options.sync ? { sync: options.sync } : {}) });
      this.#setState('bound');
      this.#db.startSync();
      return this.#db;
    } catch (error) {
      await conn?.close().catch(() => undefined);
      this.#conn = undefined;
      this.#db = undefined;
      this.#setState('signed_out');
      throw error;
    }
  }

  async #stampOwner(conn: SqliteConnection, userId: string): Promise<string> {
    await conn.exec('BEGIN IMMEDIATE');
    try {
      const owner = await readMeta(conn, MetaKey.Owner);
      if (owner === undefined) {
        await writeMeta(conn, MetaKey.Owner, userId);
        await writeMeta(conn, MetaKey.CreatedAt, String(this.#clock.now()));
      }
      let clientId = await readMeta(conn, MetaKey.ClientId);
      if (clientId === undefined) {
        clientId = this.#newId();
        await writeMeta(conn, MetaKey.ClientId, clientId);
      }
      await conn.exec('COMMIT');
      return clientId;
    } catch (error) {
      await conn.exec('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** G14: the user's own identity row exists once bound. Local only; the server ensures its own from the token. */
  async #ensureIdentity(conn: SqliteConnection, userId: string, identity: Record<string, unknown>): Promise<void> {
    const table = this.#schema.identity;
    const codec = new TableCodec(table);
    const values: Record<string, unknown> = { ...identity, [table.primaryKey]: userId };
    const missing = codec.required.filter((c) => values[c] === undefined);
    const existing = await conn.all(`SELECT 1 FROM ${q(table.name)} WHERE ${q(table.primaryKey)} = ?`, [userId]);
    if (existing.length > 0) return;
    if (missing.length > 0) {
      throw new DovetailError(
        'missing_column',
        `the identity row ${table.name} '${userId}' does not exist yet and needs ${missing.join(', ')}; pass them in bind({ identity: { ... } }) or give the columns defaults`,
      );
    }
    const cols = Object.keys(values).filter((c) => values[c] !== undefined);
    const params: SqlValue[] = cols.map((c) => codec.encode(c, values[c]));
    await conn.run(`INSERT INTO ${q(table.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ON CONFLICT (${q(table.primaryKey)}) DO NOTHING`, params);
  }

  /**
   * Signs out: stops everything bound to the user, waits for queued work,
   * closes the database, and deletes the file when `wipe` is set. A second
   * call while signed out does nothing.
   */
  async signOut(options: SignOutOptions = {}): Promise<void> {
    if (this.#state === 'signed_out') return;
    if (this.#state !== 'bound') {
      throw new DovetailError('lifecycle_busy', `signOut() called while the client is '${this.#state}'; wait for it to finish`);
    }
    const db = this.#db;
    const conn = this.#conn;
    this.#setState('signing_out');
    try {
      // Backwards: realtime and sync stop before the database closes.
      await db?.stopSync();
      db?.detach();
      await conn?.close();
      if (options.wipe && db) await this.#driver.remove(databaseFileName(db.userId));
    } finally {
      this.#db = undefined;
      this.#conn = undefined;
      this.#setState('signed_out');
    }
  }
}

/** Creates the client that owns the device database for whoever signs in. */
export function createClient<S extends Schema>(options: ClientOptions<S>): DovetailClient<S> {
  return new DovetailClient(options);
}
