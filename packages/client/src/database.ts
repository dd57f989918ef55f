import { quoteIdent as q } from '@dovetail/schema';
import type { Insert, Patch, Row, Schema, TableName } from '@dovetail/schema';
import type { Mutation, Op } from '@dovetail/protocol';
import { sqliteCodeOf } from './driver.js';
import type { SqlRow, SqliteConnection, SqlValue } from './driver.js';
import { OUTBOX } from './engine-tables.js';
import { DovetailError } from './errors.js';
import type { KeyViolation } from './errors.js';
import { Emitter } from './emitter.js';
import { LiveQueries } from './live/live-queries.js';
import type { LiveQueryOptions } from './live/live-queries.js';
import { tablesReadBy } from './live/read-tables.js';
import { normalizeOutbox, orderWithinMutation, relationsOf } from './outbox/normalize.js';
import type { NormalizeResult, OutboxEntry } from './outbox/normalize.js';
import { encodeOps } from './outbox/ops-codec.js';
import { APPEND_SQL, outboxDepth, readOutbox, writeNormalized } from './outbox/store.js';
import type { SerialConnection } from './serial-connection.js';
import { SyncRunner } from './sync/runner.js';
import type { SyncOptions } from './sync/runner.js';
import { SyncStore } from './sync/sync-store.js';
import type { RejectedMutation } from './sync/sync-store.js';
import { applyPrepared, OpCompiler } from './write/apply-ops.js';
import type { PreparedOp } from './write/apply-ops.js';
import { diagnoseForeignKeys, findViolations, tablesToCheck } from './write/diagnose.js';

/** Records the ops of one mutation; nothing touches the database until it returns. */
export interface MutationBuilder<S extends Schema> {
  insert<K extends TableName<S>>(table: K, row: Insert<S, K>): void;
  /** Inserts the row, or updates every given column if its id exists. Never deletes. */
  upsert<K extends TableName<S>>(table: K, row: Insert<S, K>): void;
  update<K extends TableName<S>>(table: K, id: string, set: Patch<S, K>): void;
  delete<K extends TableName<S>>(table: K, id: string): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface DatabaseEvents {
  /** A mutation committed locally (rows and outbox entry). */
  mutation: Mutation;
  /** Tables changed by a committed transaction. */
  change: ReadonlySet<string>;
  /** The server refused a mutation; it is in the rejected log. */
  rejected: RejectedMutation;
}

export interface DatabaseContext<S extends Schema> {
  /** When given, the database syncs with a server. */
  readonly sync?: SyncOptions;
  readonly conn: SerialConnection;
  readonly schema: S;
  readonly userId: string;
  readonly clientId: string;
  readonly clock: Clock;
  readonly newId: () => string;
}

/**
 * The signed-in user's database. Obtained from `client.bind()`; unusable
 * after sign-out.
 */
export class Database<S extends Schema = Schema> {
  readonly userId: string;
  readonly clientId: string;
  readonly schema: S;
  readonly events = new Emitter<DatabaseEvents>();
  readonly #conn: SerialConnection;
  readonly #clock: Clock;
  readonly #newId: () => string;
  readonly #compiler: OpCompiler;
  readonly #live: LiveQueries;
  readonly #relations: ReturnType<typeof relationsOf>;

  constructor(ctx: DatabaseContext<S>) {
    this.userId = ctx.userId;
    this.clientId = ctx.clientId;
    this.schema = ctx.schema;
    this.#conn = ctx.conn;
    this.#clock = ctx.clock;
    this.#newId = ctx.newId;
    this.#compiler = new OpCompiler(ctx.schema);
    this.#relations = relationsOf(ctx.schema.model);
    this.#live = new LiveQueries({
      all: (sql, params) => this.#conn.all(sql, params),
      tablesReadBy: (sql, params) => this.#conn.exclusive((c) => tablesReadBy(c, sql, params)),
    });
    this.#store = new SyncStore(this.#conn, ctx.schema, this.#compiler, () => ctx.clock.now());
    if (ctx.sync) {
      this.#runner = new SyncRunner(
        {
          store: this.#store,
          userId: ctx.userId,
          clientId: ctx.clientId,
          schemaVersion: ctx.schema.version,
          normalize: () => this.normalizeOutbox(),
          changed: (tables) => {
            this.#live.notify(tables);
            this.events.emit('change', tables);
          },
          now: () => ctx.clock.now(),
        },
        ctx.sync,
      );
      this.#runner.events.on('rejected', (r) => this.events.emit('rejected', r));
    }
  }

  readonly #store: SyncStore;
  readonly #runner: SyncRunner | undefined;

  /** The sync runner, when the database was bound with sync options. */
  get sync(): SyncRunner {
    if (!this.#runner) throw new DovetailError('not_bound', 'this database was bound without sync options; pass bind({ sync: { transport, getToken } })');
    return this.#runner;
  }

  /** Mutations the server refused, oldest first, with their ops, reason and the rows they touched (G5). */
  rejected(): Promise<RejectedMutation[]> {
    return this.#store.rejected();
  }

  /**
   * Applies a mutation locally: the rows and its outbox entry commit in one
   * transaction, and the call returns without any network I/O. Keys are
   * checked at COMMIT, so ops may come in any order; a broken key throws a
   * `ForeignKeyViolation` naming every broken key, and nothing is written.
   *
   * @example
   * await db.mutate('createPost', (m) => {
   *   m.insert('posts', { id: 'p1', author_id: db.userId, body: 'hello' });
   * });
   */
  async mutate(name: string, build: ((m: MutationBuilder<S>) => void) | readonly Op[]): Promise<Mutation> {
    if (typeof name !== 'string' || name.length === 0) {
      throw new DovetailError('invalid_value', 'mutate(name, ops): name must be a non-empty string naming the action, e.g. "createPost"');
    }
    const ops = typeof build === 'function' ? record(build) : [...build];
    if (ops.length === 0) throw new DovetailError('empty_mutation', `mutation '${name}' has no ops`);
    // Parents first (deletes children first): the same rows in the end, and
    // the order the server will apply them in.
    let prepared = ops.map((op) => this.#compiler.prepare(op));
    let canonical: readonly Op[] = prepared.map((p) => p.op);
    const ordered = orderWithinMutation(canonical, this.#relations);
    if (ordered !== canonical) {
      const byOp = new Map(prepared.map((p) => [p.op, p]));
      prepared = ordered.map((op) => byOp.get(op) as PreparedOp);
      canonical = ordered;
    }
    const mutation: Mutation = { id: this.#newId(), name, ops: canonical };
    await this.#conn.transaction(
      async (tx) => {
        try {
          await applyPrepared(tx, prepared);
        } catch (error) {
          throw await this.#explainKeys(tx, canonical, error);
        }
        await tx.run(APPEND_SQL, [mutation.id, name, encodeOps(canonical), this.#clock.now()]);
      },
      (tx, error) => this.#explainKeys(tx, canonical, error),
    );
    const changed = this.#affected(canonical);
    this.#live.notify(changed);
    this.events.emit('change', changed);
    this.events.emit('mutation', mutation);
    this.#runner?.wrote();
    return mutation;
  }

  readonly #affectedCache = new Map<string, ReadonlySet<string>>();

  /** Tables a commit of `ops` may have changed: theirs, those below (cascades), the outbox. */
  #affected(ops: readonly Op[]): ReadonlySet<string> {
    const touched = new Set<string>();
    for (const op of ops) touched.add(op.table);
    const key = [...touched].sort().join(',');
    let tables = this.#affectedCache.get(key);
    if (!tables) {
      tables = new Set([...tablesToCheck(this.schema, touched), OUTBOX]);
      this.#affectedCache.set(key, tables);
    }
    return tables;
  }

  async #explainKeys(tx: SqliteConnection, ops: readonly Op[], error: unknown): Promise<unknown> {
    if (sqliteCodeOf(error) !== 'SQLITE_CONSTRAINT_FOREIGNKEY') return error;
    return (await diagnoseForeignKeys(tx, this.schema, ops)) ?? error;
  }

  /** Runs a read-only SQL query. Rows are SQLite values (booleans as 0/1, JSON as text). */
  query<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[] = []): Promise<R[]> {
    return this.#conn.all<R>(sql, params);
  }

  /** One row by id, decoded (booleans, JSON), or undefined. */
  async get<K extends TableName<S>>(table: K, id: string): Promise<Row<S, K> | undefined> {
    const codec = this.#compiler.codec(table);
    const rows = await this.#conn.all(`SELECT * FROM ${q(table)} WHERE ${q(codec.table.primaryKey)} = ?`, [id]);
    return rows[0] ? (codec.decode(rows[0]) as Row<S, K>) : undefined;
  }

  /** Every row of a table (optionally where columns equal values), decoded, ordered by id. */
  async rows<K extends TableName<S>>(table: K, where: Partial<Row<S, K>> = {}): Promise<Row<S, K>[]> {
    const { sql, params, codec } = this.#select(table, where);
    const rows = await this.#conn.all(sql, params);
    return rows.map((r) => codec.decode(r) as Row<S, K>);
  }

  #select(table: string, where: Record<string, unknown>): { sql: string; params: SqlValue[]; codec: ReturnType<OpCompiler['codec']> } {
    const codec = this.#compiler.codec(table);
    const cols = Object.keys(where).filter((c) => where[c] !== undefined);
    const params = cols.filter((c) => where[c] !== null).map((c) => codec.encode(c, where[c]));
    const cond = cols.map((c) => (where[c] === null ? `${q(c)} IS NULL` : `${q(c)} = ?`));
    const sql = `SELECT * FROM ${q(table)}${cond.length ? ` WHERE ${cond.join(' AND ')}` : ''} ORDER BY ${q(codec.table.primaryKey)}`;
    return { sql, params, codec };
  }

  /**
   * A live query: `onData` gets the rows now and again after every commit
   * that changes a table the query reads (and only if the rows differ).
   * Returns the function that stops it.
   */
  watch<R extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[], options: LiveQueryOptions<R>): () => void {
    return this.#live.subscribe(sql, params, options);
  }

  /** A live, decoded version of `rows()`. */
  watchRows<K extends TableName<S>>(table: K, where: Partial<Row<S, K>>, onData: (rows: Row<S, K>[]) => void): () => void {
    const { sql, params, codec } = this.#select(table, where);
    return this.#live.subscribe(sql, params, { tables: [table], onData: (rows) => onData(rows.map((r) => codec.decode(r) as Row<S, K>)) });
  }

  /** Pending mutations, oldest first. */
  outbox(): Promise<OutboxEntry[]> {
    return this.#conn.exclusive(readOutbox);
  }

  outboxDepth(): Promise<number> {
    return this.#conn.exclusive(outboxDepth);
  }

  /**
   * The sync runner's first phase: merges successive changes to a row and
   * drops pairs that cancel, in one transaction. Sent entries stay as they are.
   */
  async normalizeOutbox(): Promise<NormalizeResult> {
    return this.#conn.transaction(async (tx) => {
      const before = await readOutbox(tx);
      const result = normalizeOutbox(before, this.schema.model, this.#relations);
      if (result.changed) await writeNormalized(tx, before, result);
      return result;
    });
  }

  /** Every broken key in the database (empty when all keys hold). */
  async foreignKeyCheck(): Promise<KeyViolation[]> {
    return this.#conn.exclusive((c) => findViolations(c, this.schema, this.schema.syncedTables.map((t) => t.name)));
  }

  /** @internal Starts sync, if configured (called by the client once bound). */
  startSync(): void {
    this.#runner?.start();
  }

  /** @internal Called by the client on sign-out: stops sync and realtime first. */
  async stopSync(): Promise<void> {
    await this.#runner?.stop();
  }

  /** @internal Called by the client on sign-out. */
  detach(): void {
    this.#live.clear();
    this.events.clear();
  }
}

function record<S extends Schema>(build: (m: MutationBuilder<S>) => void): Op[] {
  const ops: Op[] = [];
  const builder: MutationBuilder<S> = {
    insert: (table, row) => void ops.push({ op: 'insert', table, row: row as never }),
    upsert: (table, row) => void ops.push({ op: 'upsert', table, row: row as never }),
    update: (table, id, set) => void ops.push({ op: 'update', table, id, set: set as never }),
    delete: (table, id) => void ops.push({ op: 'delete', table, id }),
  };
  const result: unknown = build(builder);
  if (result instanceof Promise) {
    throw new DovetailError('invalid_value', 'the mutation builder must be synchronous: record ops with m.insert/update/upsert/delete and return; read what you need before calling mutate()');
  }
  return ops;
}
