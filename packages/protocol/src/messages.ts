/**
 * The messages of the sync protocol: push and pull over HTTP, pokes over a
 * WebSocket, and the error body of every non-200 response. The protocol
 * document (`docs/protocol.md`) describes their meaning and ordering rules;
 * `validate.ts` checks untrusted input against these types.
 */
import type { ErrorCode } from './error-codes.js';
import type { JsonValue, Mutation, RowValues } from './ops.js';
import type { ProtocolVersion } from './protocol-version.js';

// ---------------------------------------------------------------------------
// Push: POST /v1/push

/**
 * A mutation as it is pushed: the outbox entry, plus the id of the mutation
 * this client pushed just before it. The server processes a mutation only
 * once its `prev` is in its records, and otherwise stops the push there, so
 * mutations apply in the client's order even when requests arrive out of
 * order.
 */
export interface PushMutation extends Mutation {
  /** The id of this client's previous mutation in outbox order; null or absent when every earlier one has a result. */
  readonly prev?: string | null;
}

/** The body of a push: this client's pending mutations, oldest first. */
export interface PushRequest {
  readonly protocolVersion: ProtocolVersion;
  /** The id of the device database the mutations come from (made once per user file). */
  readonly clientId: string;
  /** The schema version the client's ops are written against. */
  readonly schemaVersion: number;
  /** Pending mutations in outbox order, starting at the oldest not yet answered. May be empty. */
  readonly mutations: readonly PushMutation[];
}

/**
 * Why the server refused a mutation. Every reason is also an error code, so
 * `describeError(reason)` documents it.
 */
export const RejectReason = {
  /** A key points at a row that never existed on the server. */
  ParentMissing: 'parent_missing',
  /** A key points at a row that was deleted on the server (policy `reject`). */
  ParentDeleted: 'parent_deleted',
  /** An earlier refused mutation of this client wrote a row this one depends on. */
  ParentRejected: 'parent_rejected',
  /** The mutation writes a row the user does not own, or moves a row to another owner. */
  Forbidden: 'forbidden',
  /** A table, column or value not in the schema, or a CHECK, NOT NULL or UNIQUE constraint. */
  Invalid: 'invalid',
  /** The same mutation id was sent before with different content. */
  Conflict: 'conflict',
  /** The mutation has more ops or bytes than the server accepts in one mutation. */
  TooLarge: 'too_large',
  /** An update names a row that does not exist on the server. */
  RowNotFound: 'row_not_found',
} as const satisfies Record<string, ErrorCode>;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** Where a refused mutation went wrong, as far as the server can say. */
export interface RejectDetails {
  /** The table of the offending row. */
  readonly table?: string;
  /** The offending column (for a key: the key column). */
  readonly column?: string;
  /** The offending value (for a key: the key value). */
  readonly value?: JsonValue;
  /** For a key: the table it points at. */
  readonly referencedTable?: string;
  /** The primary key of the offending row. */
  readonly rowId?: string;
}

/** The outcome of one mutation. */
export const MutationStatus = {
  Applied: 'applied',
  Rejected: 'rejected',
} as const;
export type MutationStatus = (typeof MutationStatus)[keyof typeof MutationStatus];

/** What the server did with one mutation. A replay returns the original result. */
export type MutationResult =
  | { readonly id: string; readonly status: 'applied' }
  | {
      readonly id: string;
      readonly status: 'rejected';
      readonly reason: RejectReason;
      /** What went wrong, for people (logs, the rejected log). */
      readonly message: string;
      readonly details?: RejectDetails;
    };

/**
 * The answer to a push: one result per processed mutation, in request order.
 * The server may stop early and answer fewer results; the client sends the
 * rest again in a later push.
 */
export interface PushResponse {
  readonly results: readonly MutationResult[];
}

// ---------------------------------------------------------------------------
// Pull: POST /v1/pull

/** The body of a pull: the client's position in the change stream. */
export interface PullRequest {
  readonly protocolVersion: ProtocolVersion;
  readonly clientId: string;
  readonly schemaVersion: number;
  /** The cursor of the last applied pull response; `null` for a first sync or a resync. */
  readonly cursor: string | null;
  /** How many changes the client would like at most (1..10000); the server picks when absent. */
  readonly limit?: number;
  /**
   * Rows the client changed locally and needs the server's version of, to
   * rebase its pending mutations (and undo refused ones). The server answers
   * each with an upsert (visible row) or a delete (gone or not visible);
   * with `deep`, also every visible row below it (rows a local delete took
   * with it through cascades).
   */
  readonly refresh?: readonly RefreshKey[];
}

/** A row whose server version the client asks for. */
export interface RefreshKey {
  readonly table: string;
  readonly id: string;
  readonly deep?: boolean;
}

/** The kinds of change a pull carries. */
export const ChangeKind = {
  Upsert: 'upsert',
  Delete: 'delete',
} as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/**
 * One row change: an upsert carries the whole row; a delete means the row is
 * gone for this user (deleted, or no longer visible to them).
 */
export type Change =
  | { readonly op: 'upsert'; readonly table: string; readonly row: RowValues }
  | { readonly op: 'delete'; readonly table: string; readonly id: string };

/**
 * The answer to a pull. Changes are in the order to apply them: upserts
 * parents first, deletes children first. The client applies them, the
 * cursor and `lastMutationId` in one transaction.
 */
export interface PullResponse {
  /** The position to pull from next time. Opaque. */
  readonly cursor: string;
  /** True when this response starts a full resync: clear the synced tables, then apply. */
  readonly reset: boolean;
  readonly changes: readonly Change[];
  /** True when more changes are waiting: pull again at once with the new cursor. */
  readonly hasMore: boolean;
  /** The last mutation of this client whose result the state up to `cursor` contains. */
  readonly lastMutationId: string | null;
}

// ---------------------------------------------------------------------------
// Pokes: WebSocket /v1/poke

/** The `type` of a WebSocket message. */
export const MessageType = {
  Hello: 'hello',
  Welcome: 'welcome',
  Poke: 'poke',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** The client's first (and only) message on the WebSocket. */
export interface Hello {
  readonly type: 'hello';
  readonly protocolVersion: ProtocolVersion;
  readonly clientId: string;
  /** The same token as the HTTP `Authorization` header, without `Bearer `. */
  readonly token: string;
}

/** The server accepted the Hello; pokes follow. */
export interface Welcome {
  readonly type: 'welcome';
  readonly protocolVersion: ProtocolVersion;
}

/** Something this user may see changed: pull. Carries no data; pokes may be merged. */
export interface Poke {
  readonly type: 'poke';
  readonly protocolVersion: ProtocolVersion;
}

/** The body of every non-200 HTTP response, and the last WebSocket message before an error close. */
export interface ErrorBody {
  readonly error: {
    /** A request-level code (see `RequestErrorStatus`); a client meeting another one acts on the HTTP status. */
    readonly code: ErrorCode;
    /** What went wrong, for people; for `invalid_request`, names the field. */
    readonly message: string;
  };
}

/** Any message a client sends on the WebSocket. */
export type ClientMessage = Hello;

/** Any message a server sends on the WebSocket. */
export type ServerMessage = Poke | Welcome | ErrorBody;

/**
 * Builds the body of an error response.
 *
 * @example
 * res.writeHead(httpStatusOf('cursor_expired'));
 * res.end(JSON.stringify(errorBody('cursor_expired', 'cursor is older than 30 days of deletions; pull with cursor null')));
 */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}
