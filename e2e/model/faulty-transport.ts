import { decodeJwt } from 'jose';
import { httpStatusOf, parsePullResponse, parsePushResponse } from '@dovetail/protocol';
import type { PullRequest, PullResponse, PushRequest, PushResponse } from '@dovetail/protocol';
import { TransportError } from '@dovetail/client';
import type { SyncTransport } from '@dovetail/client';
import type { SyncServer } from '@dovetail/server';
import { toTransportError } from '../support/server-errors.js';

/**
 * The network between the devices and one in-process SyncServer: no HTTP,
 * but the same JSON round trip, the same parsers and the same mapping of
 * errors to statuses as the HTTP server and transport. Each device has its
 * own link, which the test can take offline or make misbehave:
 *
 * - `drop-before`: the request never reaches the server (network error);
 * - `drop-after`: the server processes it, the answer is lost (network error);
 * - `duplicate`: the request reaches the server twice, concurrently;
 * - `late`: the client times out at once, the request is still in the
 *   network and reaches the server when released, possibly after newer ones;
 * - `hold`: the client waits; the request reaches the server when released,
 *   possibly after newer requests of other devices (reordering);
 * - `expired`: the token ran out on the way: the server refuses it with
 *   `token_expired` before looking at the request, and the device must
 *   refresh its token and carry on (D4).
 *
 * A device can also be "closed abruptly" at a point of a sync: before or
 * after its push or pull reaches the server.
 */

export type FaultKind = 'drop-before' | 'drop-after' | 'duplicate' | 'late' | 'hold' | 'expired';
export type CrashPoint = 'push-before' | 'push-after' | 'pull-before' | 'pull-after';
export type RequestKind = 'push' | 'pull';

/** One bound database on a device: the transport the runner got at bind. */
export interface Binding {
  readonly device: number;
  /** The user the database belongs to. */
  readonly owner: string;
  clientId: string;
  /** The process was killed: whatever this binding sends from now on never comes back. */
  dead: boolean;
  /** Sign-out (or a crash) is under way: a cancelled sync is expected. */
  closing: boolean;
}

/** One request as the server saw it. */
export interface ServerCall {
  readonly kind: RequestKind;
  readonly binding: Binding;
  readonly request: PushRequest | PullRequest;
  /** The `sub` of the token the request carried. */
  readonly tokenSub: string | undefined;
  readonly response?: PushResponse | PullResponse;
  readonly error?: TransportError;
}

/** What the model learns from the network. */
export interface NetworkObserver {
  /** A request leaves a device (checked: the token's user is the database owner). */
  sent(binding: Binding, kind: RequestKind, request: PushRequest | PullRequest, tokenSub: string | undefined): void;
  /** The server answered these calls (more than one when they ran concurrently). */
  served(calls: readonly ServerCall[]): Promise<void>;
  /** The answer of this call reached the client. */
  answered(call: ServerCall): void;
}

interface Held {
  readonly binding: Binding;
  readonly kind: RequestKind;
  readonly request: PushRequest | PullRequest;
  readonly token: string;
  /** Absent for a `late` request: the client gave up on it already. */
  waiter?: { resolve(value: PushResponse | PullResponse): void; reject(error: unknown): void; settled: boolean };
}

interface Link {
  online: boolean;
  /** Requests answered `token_expired` in a row (a refreshed token fails only if the fault outlasts it). */
  expiredInARow: number;
  fault: { kind: FaultKind; remaining: number } | undefined;
  crash: { at: CrashPoint; fire: () => void } | undefined;
}

const networkError = (why: string): TransportError => new TransportError('network', 0, `network error: ${why}`);

/** A promise that never settles: what a killed process waits for. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

function subOf(token: string): string | undefined {
  try {
    const sub = decodeJwt(token).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

export class Network {
  readonly #links: Link[] = [];
  readonly #held: Held[] = [];
  readonly #holdListeners = new Set<{ device: number; fn: () => void }>();
  readonly #server: () => SyncServer;
  readonly #observer: NetworkObserver;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(server: () => SyncServer, observer: NetworkObserver) {
    this.#server = server;
    this.#observer = observer;
  }

  /**
   * The server handles one request (or one duplicated pair) at a time, and
   * the observer looks at the server right after it: so the model sees every
   * state a pull can read.
   */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** One request (or `copies` concurrent copies of it) to the server, then the observer. */
  #serve(binding: Binding, kind: RequestKind, request: PushRequest | PullRequest, token: string, copies = 1): Promise<ServerCall[]> {
    return this.#exclusive(async () => {
      const calls = await Promise.all(Array.from({ length: copies }, () => this.#call(binding, kind, request, token)));
      await this.#observer.served(calls);
      return calls;
    });
  }

  #link(device: number): Link {
    let link = this.#links[device];
    if (!link) {
      link = { online: true, expiredInARow: 0, fault: undefined, crash: undefined };
      this.#links[device] = link;
    }
    return link;
  }

  setOnline(device: number, online: boolean): void {
    this.#link(device).online = online;
  }

  setFault(device: number, kind: FaultKind, count: number): void {
    this.#link(device).fault = { kind, remaining: count };
  }

  /** Calls `fire` when the device's next sync reaches `at`; the answer (if any) is lost. */
  armCrash(device: number, at: CrashPoint, fire: () => void): void {
    this.#link(device).crash = { at, fire };
  }

  disarmCrash(device: number): void {
    this.#link(device).crash = undefined;
  }

  /** Faults off, every device online, nothing armed. Held requests stay until released. */
  calm(): void {
    for (const link of this.#links) {
      if (!link) continue;
      link.online = true;
      link.fault = undefined;
      link.crash = undefined;
    }
  }

  get heldCount(): number {
    return this.#held.length;
  }

  /** Whether a client of `device` is waiting for a held request. */
  isWaiting(device: number): boolean {
    return this.#held.some((h) => h.binding.device === device && h.waiter !== undefined && !h.waiter.settled && !h.binding.dead);
  }

  /** Calls `fn` once a client of `device` starts waiting for a held request; returns the function that stops listening. */
  onHold(device: number, fn: () => void): () => void {
    const entry = { device, fn };
    this.#holdListeners.add(entry);
    return () => this.#holdListeners.delete(entry);
  }

  /** The transport a runner gets when `binding` is bound. */
  transportFor(binding: Binding): SyncTransport {
    return {
      push: (request, token, signal) => this.#send(binding, 'push', request, token, signal) as Promise<PushResponse>,
      pull: (request, token, signal) => this.#send(binding, 'pull', request, token, signal) as Promise<PullResponse>,
    };
  }

  /**
   * Delivers held requests (of one device, or all) to the server, oldest
   * first or newest first. A client still waiting gets its answer.
   */
  /** How many requests of this device were just answered `token_expired` in a row. */
  expiredInARow(device: number): number {
    return this.#link(device).expiredInARow;
  }

  async release(device: number | 'all', order: 'fifo' | 'lifo'): Promise<number> {
    const picked = this.#held.filter((h) => device === 'all' || h.binding.device === device);
    for (const h of picked) this.#held.splice(this.#held.indexOf(h), 1);
    if (order === 'lifo') picked.reverse();
    for (const h of picked) {
      const [call] = (await this.#serve(h.binding, h.kind, h.request, h.token)) as [ServerCall];
      const w = h.waiter;
      if (!w || w.settled || h.binding.dead) continue;
      w.settled = true;
      if (call.error) w.reject(call.error);
      else {
        this.#observer.answered(call);
        w.resolve(call.response as PushResponse | PullResponse);
      }
    }
    return picked.length;
  }

  async #send(binding: Binding, kind: RequestKind, request: PushRequest | PullRequest, token: string, signal: AbortSignal): Promise<PushResponse | PullResponse> {
    if (binding.dead) return never();
    this.#observer.sent(binding, kind, request, subOf(token));
    const link = this.#link(binding.device);
    if (link.crash?.at === `${kind}-before`) return this.#crash(link, binding);
    if (!link.online) throw networkError('the device is offline');
    const fault = link.fault;
    let kindOfFault: FaultKind | undefined;
    if (fault) {
      kindOfFault = fault.kind;
      if (--fault.remaining <= 0) link.fault = undefined;
    }
    link.expiredInARow = kindOfFault === 'expired' ? link.expiredInARow + 1 : 0;
    switch (kindOfFault) {
      case 'drop-before':
        throw networkError('the request was dropped before it reached the server');
      case 'drop-after': {
        await this.#serve(binding, kind, request, token);
        throw networkError('the answer was lost');
      }
      case 'duplicate': {
        const [first] = (await this.#serve(binding, kind, request, token, 2)) as [ServerCall, ServerCall];
        return this.#answer(link, binding, first);
      }
      case 'expired':
        throw new TransportError('token_expired', httpStatusOf('token_expired'), 'the token has expired; refresh it and retry');
      case 'late':
        this.#held.push({ binding, kind, request, token });
        throw networkError('timed out (the request is still on its way)');
      case 'hold':
        return new Promise<PushResponse | PullResponse>((resolve, reject) => {
          const waiter = { resolve, reject, settled: false };
          this.#held.push({ binding, kind, request, token, waiter });
          signal.addEventListener('abort', () => {
            if (waiter.settled) return;
            waiter.settled = true;
            reject(networkError('the request was cancelled (it is still on its way)'));
          });
          for (const l of [...this.#holdListeners]) if (l.device === binding.device) l.fn();
        });
      case undefined: {
        const [call] = (await this.#serve(binding, kind, request, token)) as [ServerCall];
        return this.#answer(link, binding, call);
      }
    }
  }

  #answer(link: Link, binding: Binding, call: ServerCall): Promise<PushResponse | PullResponse> {
    if (link.crash?.at === `${call.kind}-after`) return this.#crash(link, binding);
    if (call.error) return Promise.reject(call.error);
    this.#observer.answered(call);
    return Promise.resolve(call.response as PushResponse | PullResponse);
  }

  #crash(link: Link, binding: Binding): Promise<never> {
    const crash = link.crash;
    link.crash = undefined;
    crash?.fire();
    if (binding.dead) return never();
    return Promise.reject(networkError('the app was closed'));
  }

  /** One request to the server, as over HTTP: JSON both ways, errors as status codes. */
  async #call(binding: Binding, kind: RequestKind, request: PushRequest | PullRequest, token: string): Promise<ServerCall> {
    const server = this.#server();
    const body = JSON.parse(JSON.stringify(request)) as unknown;
    const authorization = `Bearer ${token}`;
    const base = { kind, binding, request, tokenSub: subOf(token) };
    let raw: unknown;
    try {
      raw = kind === 'push' ? await server.push(authorization, body) : await server.pull(authorization, body);
    } catch (error) {
      return { ...base, error: toTransportError(error, server) };
    }
    // A malformed answer is a server bug: the parser's error reaches the runner as it would over HTTP.
    const wire = JSON.parse(JSON.stringify(raw)) as unknown;
    const response = kind === 'push' ? parsePushResponse(wire) : parsePullResponse(wire);
    return { ...base, response };
  }
}
