import { PROTOCOL_VERSION, WireLimits } from '@dovetail/protocol';
import type { PullResponse, PushMutation, RefreshKey } from '@dovetail/protocol';
import { DovetailError } from '../errors.js';
import { Emitter } from '../emitter.js';
import { StaleRefresh } from './sync-store.js';
import type { RejectedMutation, SyncStore } from './sync-store.js';
import { TransportError } from './transport.js';
import type { SyncTransport } from './transport.js';
import { systemTimers } from './timers.js';
import type { Timers } from './timers.js';
import { backoffMs, SYNC_DEFAULTS } from './backoff.js';

export type { Timers } from './timers.js';

export interface SyncOptions {
  readonly transport: SyncTransport;
  /** The current token of the signed-in user. */
  readonly getToken: () => string | Promise<string>;
  /** Called when the server says the token expired; returns a fresh one. */
  readonly refreshToken?: () => Promise<string>;
  readonly timers?: Timers;
  readonly random?: () => number;
  /** First retry delay after a transient failure; doubles up to `maxBackoffMs`. Default 500. */
  readonly initialBackoffMs?: number;
  /** Default 60,000. */
  readonly maxBackoffMs?: number;
  /**
   * Sync this long after a local write. Default 0: the first write syncs at
   * once, and writes made while that sync runs go together in the one sync
   * that follows it.
   */
  readonly writeDelayMs?: number;
  /** Sync at least this often while bound. Default 30,000. */
  readonly intervalMs?: number;
  /** Mutations per push. Default 100. */
  readonly pushBatchSize?: number;
}

export interface SyncReport {
  readonly pushed: number;
  readonly rejected: readonly RejectedMutation[];
  readonly pulled: number;
  readonly finalized: number;
}

export interface SyncEvents {
  /** A sync ran to the end. */
  synced: SyncReport;
  /** The server refused a mutation; it is in the rejected log. */
  rejected: RejectedMutation;
  /** A sync failed; it will be retried (transient) or needs the app (permanent). */
  error: { readonly error: unknown; readonly transient: boolean; readonly retryInMs: number | undefined };
}

export interface RunnerContext {
  readonly store: SyncStore;
  readonly userId: string;
  readonly clientId: string;
  readonly schemaVersion: number;
  readonly normalize: () => Promise<unknown>;
  /** Called after a pull changed tables (live queries, events). */
  readonly changed: (tables: ReadonlySet<string>) => void;
  /** Milliseconds since the epoch (the client's injected clock). */
  readonly now: () => number;
}

const TRANSIENT = new Set(['network', 'internal', 'rate_limited', 'token_expired']);

/**
 * The sync runner: one sync at a time (single-flight), each made of
 * phases that are safe to rerun after a crash: normalize, push, pull (with
 * finalize in the same transaction). It runs on bind, on a timer with
 * backoff and jitter, on reconnect, on a poke, and shortly after a local
 * write — never inside `mutate()`.
 *
 * After a failed sync, nothing automatic starts another before its retry
 * time (the backoff, or the server's Retry-After if longer): local writes
 * made meanwhile wait for it, so an app that writes during an outage does
 * not retry at the pace of its writes. A poke or a reconnected poke channel
 * ends the wait only when the failure was a network error (the server is
 * reachable again); an answer that asked the device to wait is honoured.
 * `syncNow()`, the app's explicit request, runs at once.
 */
export class SyncRunner {
  readonly events = new Emitter<SyncEvents>();
  readonly #ctx: RunnerContext;
  readonly #options: SyncOptions;
  readonly #timers: Timers;
  #running: Promise<SyncReport> | undefined;
  #followUp: Promise<SyncReport> | undefined;
  #stopped = false;
  #timer: unknown;
  #timerDue = Infinity;
  #failures = 0;
  /** After a failure: no automatic sync before this time (see the class comment). */
  #notBefore = -Infinity;
  /** The last failure was a network error (no answer from the server). */
  #unreachable = false;
  /** A timer fell due while a sync was running: another follows it (at once, or at the retry time). */
  #again = false;
  #abort = new AbortController();
  #closePokes: (() => void) | undefined;
  #token: string | undefined;

  constructor(ctx: RunnerContext, options: SyncOptions) {
    this.#ctx = ctx;
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  /** Starts syncing: now, on pokes, on reconnect, and on the interval. */
  start(): void {
    this.#schedule(0);
    this.#closePokes = this.#options.transport.pokes?.(() => this.#currentToken(), this.#ctx.clientId, {
      onPoke: () => this.#wake(),
      onOpen: () => this.#wake(),
    });
  }

  /**
   * Resolves once no sync is running or waiting to follow the running one
   * (whatever started them), whether they succeed or fail. For tests and
   * for apps that show a sync indicator.
   */
  async whenIdle(): Promise<void> {
    for (;;) {
      const busy = this.#followUp ?? this.#running;
      if (!busy) return;
      await busy.catch(() => undefined);
    }
  }

  /** A local write happened: sync soon, batching writes that follow. */
  wrote(): void {
    this.#schedule(this.#options.writeDelayMs ?? SYNC_DEFAULTS.writeDelayMs);
  }

  /**
   * Runs a sync now (or joins the one running, then runs again) and
   * resolves when it is done. Rejects with the failure; the runner keeps
   * its own schedule either way.
   */
  syncNow(): Promise<SyncReport> {
    if (this.#stopped) return Promise.reject(new DovetailError('not_bound', 'sync is stopped: the user signed out'));
    if (this.#running) {
      // Every request that arrives during a sync is served by one more sync
      // after it (its changes may have missed the running one), never by more.
      this.#followUp ??= this.#running
        .catch(() => undefined)
        .then(() => {
          this.#followUp = undefined;
          return this.syncNow();
        });
      return this.#followUp;
    }
    const run = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        if (!this.#followUp) this.#schedule(0);
      }
    });
    this.#running = run;
    return run;
  }

  /** Stops everything bound to this user: timers, pokes, requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timers.clearTimeout(this.#timer);
    this.#closePokes?.();
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }

  /** The server reached the device (a poke, or the poke channel reopened). */
  #wake(): void {
    if (this.#unreachable) this.#notBefore = -Infinity;
    this.#schedule(0);
  }

  /** Syncs in `ms`, or at the retry time if that is later; an earlier timer already set stands. */
  #schedule(ms: number): void {
    if (this.#stopped) return;
    const now = this.#ctx.now();
    const due = Math.max(now + ms, this.#notBefore);
    if (this.#timer !== undefined && due >= this.#timerDue) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      // During a sync, one more follows it (unless one is queued already).
      if (!this.#running) this.syncNow().catch(() => undefined);
      else if (!this.#followUp) this.#again = true;
    }, due - now);
  }

  async #run(): Promise<SyncReport> {
    try {
      const report = await this.#phases();
      this.#failures = 0;
      this.#notBefore = -Infinity;
      this.#unreachable = false;
      this.events.emit('synced', report);
      this.#schedule(this.#options.intervalMs ?? SYNC_DEFAULTS.intervalMs);
      return report;
    } catch (error) {
      if (this.#stopped) throw error;
      const transient = error instanceof TransportError ? TRANSIENT.has(error.code) || error.status >= 500 : false;
      this.#failures++;
      const jittered = backoffMs(
        this.#failures,
        this.#options.initialBackoffMs ?? SYNC_DEFAULTS.initialBackoffMs,
        this.#options.maxBackoffMs ?? SYNC_DEFAULTS.maxBackoffMs,
        this.#options.random ?? Math.random,
      );
      const retryInMs = error instanceof TransportError && error.retryAfterMs !== undefined ? Math.max(error.retryAfterMs, jittered) : jittered;
      this.#notBefore = this.#ctx.now() + retryInMs;
      this.#unreachable = error instanceof TransportError && error.code === 'network';
      this.events.emit('error', { error, transient, retryInMs });
      // A timer set while it ran (a write, a poke) waits for the retry too.
      this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#schedule(retryInMs);
      throw error;
    }
  }

  async #phases(): Promise<SyncReport> {
    // 1. normalize
    await this.#ctx.normalize();
    // 2. push
    const { pushed, rejected } = await this.#push();
    // 3 + 4. pull, apply with replay, finalize; again if a local write
    // arrived while the pull was on its way (its rows were not refreshed).
    for (let attempt = 1; ; attempt++) {
      const refresh = await this.#ctx.store.refreshKeys();
      const response = await this.#pull(refresh);
      this.#checkStopped();
      try {
        const applied = await this.#ctx.store.applyPull(response, refresh);
        this.#ctx.changed(applied.tables);
        return { pushed, rejected, pulled: response.changes.length, finalized: applied.finalized };
      } catch (error) {
        if (!(error instanceof StaleRefresh) || attempt >= 5) throw error;
      }
    }
  }

  async #pull(refresh: readonly RefreshKey[]): Promise<PullResponse> {
    const request = (cursor: string | null, keys: readonly RefreshKey[]) => (token: string) =>
      this.#options.transport.pull(
        { protocolVersion: PROTOCOL_VERSION, clientId: this.#ctx.clientId, schemaVersion: this.#ctx.schemaVersion, cursor, ...(keys.length ? { refresh: keys } : {}) },
        token,
        this.#abort.signal,
      );
    /** From scratch: the `reset` answer brings every row back, so nothing needs naming. */
    const resync = (): Promise<PullResponse> => this.#withToken(request(null, []));
    // More rows to refresh than a pull may name (a large import pending or refused).
    if (refresh.length > WireLimits.maxRefreshKeys) return resync();
    const cursor = await this.#ctx.store.cursor();
    try {
      return await this.#withToken(request(cursor, refresh));
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      if (error.code === 'cursor_expired' && cursor !== null) return resync();
      // The keys make the request larger than the server takes.
      if (error.code === 'body_too_large' && refresh.length > 0) return resync();
      throw error;
    }
  }

  async #push(): Promise<{ pushed: number; rejected: RejectedMutation[] }> {
    let pushed = 0;
    const rejected: RejectedMutation[] = [];
    let batch = this.#options.pushBatchSize ?? SYNC_DEFAULTS.pushBatchSize;
    for (;;) {
      this.#checkStopped();
      const mutations = await this.#ctx.store.nextToPush(batch);
      if (mutations.length === 0) break;
      let results;
      try {
        results = await this.#withToken((token) => this.#send(mutations, token));
      } catch (error) {
        const code = error instanceof TransportError ? error.code : undefined;
        // Over a limit of the server (its body size, or its mutations per
        // push): send half as many, down to one.
        if ((code === 'body_too_large' || code === 'too_many_mutations') && mutations.length > 1) {
          batch = Math.max(1, Math.floor(mutations.length / 2));
          continue;
        }
        if (code === 'body_too_large' && error instanceof TransportError) {
          const one = mutations[0] as PushMutation;
          const out = await this.#ctx.store.rejectLocally(one.id, 'too_large', `mutation '${one.name}' is larger than the server accepts (${error.message}); split it into smaller mutations`);
          for (const r of out) this.events.emit('rejected', r);
          rejected.push(...out);
          continue;
        }
        throw error;
      }
      const refused = await this.#ctx.store.recordResults(results);
      for (const r of refused) this.events.emit('rejected', r);
      rejected.push(...refused);
      pushed += results.length;
      // Fewer results than mutations: the server waits for a predecessor; pull, then try again later.
      if (results.length < mutations.length) break;
    }
    return { pushed, rejected };
  }

  async #send(mutations: PushMutation[], token: string) {
    const response = await this.#options.transport.push({ protocolVersion: PROTOCOL_VERSION, clientId: this.#ctx.clientId, schemaVersion: this.#ctx.schemaVersion, mutations }, token, this.#abort.signal);
    return response.results.filter((r, i) => r.id === mutations[i]?.id);
  }

  async #currentToken(): Promise<string> {
    this.#token ??= await this.#options.getToken();
    checkTokenOwner(this.#token, this.#ctx.userId);
    return this.#token;
  }

  /** Runs a request with the token; on `token_expired`, asks the app for a fresh one and retries once (D4). */
  async #withToken<T>(request: (token: string) => Promise<T>): Promise<T> {
    const token = await this.#currentToken();
    try {
      return await request(token);
    } catch (error) {
      if (!(error instanceof TransportError) || error.code !== 'token_expired' || !this.#options.refreshToken) throw error;
      this.#token = await this.#options.refreshToken();
      checkTokenOwner(this.#token, this.#ctx.userId);
      return request(this.#token);
    }
  }

  #checkStopped(): void {
    if (this.#stopped) throw new DovetailError('not_bound', 'sync was cancelled by sign-out');
  }
}

/**
 * A's outbox is never pushed with B's token (I1): the token's `sub` must be
 * the database's owner. The signature is the server's business; this only
 * reads the claim.
 */
function checkTokenOwner(token: string, userId: string): void {
  const payload = token.split('.')[1];
  let sub: unknown;
  try {
    sub = (JSON.parse(new TextDecoder().decode(base64UrlDecode(payload ?? ''))) as { sub?: unknown }).sub;
  } catch {
    sub = undefined;
  }
  if (sub !== userId) {
    throw new DovetailError('wrong_owner', `the token is for ${typeof sub === 'string' ? `user '${sub}'` : 'no user'}, but this database belongs to '${userId}'; it was not used`);
  }
}

function base64UrlDecode(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
