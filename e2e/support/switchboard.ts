import { parsePullResponse, parsePushResponse } from '@dovetail/protocol';
import type { PullRequest, PushRequest } from '@dovetail/protocol';
import { TransportError } from '@dovetail/client';
import type { PokeHandlers, SyncTransport } from '@dovetail/client';
import type { SyncServer } from '@dovetail/server';
import { toTransportError } from './server-errors.js';

/** A request as the switchboard saw it. */
export interface Call {
  readonly kind: 'push' | 'pull';
  /** On the test's clock. */
  readonly at: number;
}

/**
 * One device's line to an in-process server, with the faults a test sets:
 * requests answered with an error, or held until released; and the poke
 * channel, which the test pokes or reopens. It records when each request
 * started, and the most that were ever in flight at once.
 */
export class Switchboard {
  readonly calls: Call[] = [];
  /** Errors for the next requests, in order (instead of reaching the server). */
  readonly failures: TransportError[] = [];
  /** While true, requests wait for `release()`. */
  holding = false;
  /** The most requests that were ever in flight at once. */
  maxInFlight = 0;
  #inFlight = 0;
  /** Called as each request starts. */
  onCall: ((call: Call) => void) | undefined;
  readonly #held: (() => void)[] = [];
  #channel: PokeHandlers | undefined;
  readonly #server: SyncServer;
  readonly #now: () => number;

  constructor(server: SyncServer, now: () => number) {
    this.#server = server;
    this.#now = now;
  }

  get channelOpen(): boolean {
    return this.#channel !== undefined;
  }

  get held(): number {
    return this.#held.length;
  }

  /** Lets every held request go on. */
  release(): void {
    for (const go of this.#held.splice(0)) go();
  }

  /** A poke from the server; false when the channel is closed. */
  poke(): boolean {
    this.#channel?.onPoke();
    return this.#channel !== undefined;
  }

  /** The poke channel reconnected; false when it is closed. */
  reopen(): boolean {
    this.#channel?.onOpen();
    return this.#channel !== undefined;
  }

  transport(): SyncTransport {
    return {
      push: async (request, token, signal) => parsePushResponse(await this.#call('push', request, token, signal)),
      pull: async (request, token, signal) => parsePullResponse(await this.#call('pull', request, token, signal)),
      pokes: (_token, _clientId, handlers) => {
        this.#channel = handlers;
        return () => {
          if (this.#channel === handlers) this.#channel = undefined;
        };
      },
    };
  }

  async #call(kind: 'push' | 'pull', request: PushRequest | PullRequest, token: string, signal: AbortSignal): Promise<unknown> {
    const call: Call = { kind, at: this.#now() };
    this.calls.push(call);
    this.onCall?.(call);
    this.#inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      if (this.holding) {
        await new Promise<void>((resolve, reject) => {
          this.#held.push(resolve);
          signal.addEventListener('abort', () => reject(new TransportError('network', 0, 'network error: the request was cancelled')), { once: true });
        });
      }
      const failure = this.failures.shift();
      if (failure) throw failure;
      const body = JSON.parse(JSON.stringify(request)) as unknown;
      const authorization = `Bearer ${token}`;
      try {
        const answer = kind === 'push' ? await this.#server.push(authorization, body) : await this.#server.pull(authorization, body);
        return JSON.parse(JSON.stringify(answer)) as unknown;
      } catch (error) {
        throw toTransportError(error, this.#server);
      }
    } finally {
      this.#inFlight--;
    }
  }
}
