import type { Schema } from '@dovetail/schema';
import { parsePullRequest, parsePushRequest, PROTOCOL_VERSION } from '@dovetail/protocol';
import type { PullRequest } from '@dovetail/protocol';
import type { Authenticator, Identity } from './auth.js';
import { ChangeSignal } from './change-signal.js';
import { ServerError } from './errors.js';
import { defaultIdentityRow } from './identity.js';
import type { IdentityRow } from './identity.js';
import { silentLogger } from './logger.js';
import type { Logger } from './logger.js';
import { pull } from './pull.js';
import { STREAM_CHUNK_ROWS, streamFirstSync } from './pull-stream.js';
import type { PullSink } from './pull-stream.js';
import type { PullDeps, PullResult } from './pull.js';
import { push } from './push.js';
import type { MutationResult, PushLimits } from './push.js';
import { setupDatabase } from './setup.js';
import type { Sql } from './sql.js';

export interface SyncServerOptions {
  readonly schema: Schema;
  readonly sql: Sql;
  readonly authenticate: Authenticator;
  readonly limits?: Partial<PushLimits>;
  /** Rows per chunk of a streamed first sync (default 10,000). */
  readonly streamChunkRows?: number;
  /** Columns of a new user's identity row, from their token (default: `name` from the claims). */
  readonly identityRow?: IdentityRow;
  readonly log?: Logger;
}

export const DEFAULT_LIMITS: PushLimits = { maxMutationsPerPush: 1000, maxOpsPerMutation: 10_000, maxMutationBytes: 4 * 1024 * 1024 };

/**
 * The sync logic without a transport: authenticate, validate, push or
 * pull. The HTTP server and the tests both drive it.
 */
export class SyncServer {
  readonly schema: Schema;
  readonly sql: Sql;
  readonly log: Logger;
  readonly limits: PushLimits;
  readonly #authenticate: Authenticator;
  readonly #identityRow: IdentityRow;
  readonly #streamChunkRows: number;
  readonly #signal: ChangeSignal;

  constructor(options: SyncServerOptions) {
    this.schema = options.schema;
    this.sql = options.sql;
    this.log = options.log ?? silentLogger;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#authenticate = options.authenticate;
    this.#identityRow = options.identityRow ?? defaultIdentityRow;
    this.#streamChunkRows = options.streamChunkRows ?? STREAM_CHUNK_ROWS;
    this.#signal = new ChangeSignal(this.sql, this.log);
  }

  /** Resolves once the signals of committed pushes have been sent (before the database is closed). */
  settled(): Promise<void> {
    return this.#signal.settled();
  }

  /** Creates missing tables, the engine tables and the capture triggers. */
  setup(): Promise<void> {
    return setupDatabase(this.sql, this.schema);
  }

  authenticate(authorization: string | undefined): ReturnType<Authenticator> {
    return this.#authenticate(authorization);
  }

  async push(authorization: string | undefined, body: unknown): Promise<{ results: MutationResult[] }> {
    return this.pushFor(await this.#authenticate(authorization), body);
  }

  /** A push for an identity already verified (by the transport). */
  async pushFor(identity: Identity, body: unknown): Promise<{ results: MutationResult[] }> {
    const request = parsePushRequest(body);
    this.#checkSchema(request.schemaVersion);
    const deps = { sql: this.sql, schema: this.schema, limits: this.limits, identityRow: this.#identityRow, log: this.log, committed: () => this.#signal.signal() };
    const results = await push(deps, identity, request);
    return { results };
  }

  async pull(authorization: string | undefined, body: unknown): Promise<PullResult> {
    return this.pullFor(await this.#authenticate(authorization), body);
  }

  /** A pull for an identity already verified (by the transport). */
  async pullFor(identity: Identity, body: unknown): Promise<PullResult> {
    const request = this.#pullRequest(body);
    return pull(this.#pullDeps, identity, request.clientId, request.cursor, request.refresh ?? []);
  }

  /**
   * A pull written to `write`: a first sync (cursor null) on a Postgres
   * server is streamed in chunks as it is read, so its size does not land
   * in memory; anything else is written in one piece. (On embedded PGlite a
   * stream would hold its one connection for as long as the device takes
   * to read, so it is not streamed there.)
   */
  async pullTo(identity: Identity, body: unknown, write: PullSink): Promise<void> {
    const request = this.#pullRequest(body);
    if (request.cursor === null && this.sql.kind === 'postgres') {
      await streamFirstSync(this.#pullDeps, identity, request.clientId, write, this.#streamChunkRows);
      return;
    }
    await write(JSON.stringify(await pull(this.#pullDeps, identity, request.clientId, request.cursor, request.refresh ?? [])));
  }

  #pullRequest(body: unknown): PullRequest {
    const request = parsePullRequest(body);
    this.#checkSchema(request.schemaVersion);
    return request;
  }

  get #pullDeps(): PullDeps {
    return { sql: this.sql, schema: this.schema, identityRow: this.#identityRow };
  }

  #checkSchema(version: number): void {
    if (version !== this.schema.version) {
      throw new ServerError('schema_mismatch', `the device runs schema version ${version}, the server ${this.schema.version} (protocol ${PROTOCOL_VERSION}); update the app`);
    }
  }
}
