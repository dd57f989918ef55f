import { parseErrorBody, parsePullResponse, parsePushResponse, parseServerMessage, PROTOCOL_VERSION } from '@dovetail/protocol';
import type { ErrorCode, PullRequest, PullResponse, PushRequest, PushResponse } from '@dovetail/protocol';
import { backoffMs, RECONNECT_DEFAULTS } from './backoff.js';

/** A failed request: `code` is the server's error code, or `network` when no answer came. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: ErrorCode | 'network';
  readonly status: number;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode | 'network', status: number, message: string, retryAfterMs?: number) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface PokeHandlers {
  onPoke(): void;
  /** The channel is (re)connected: a good moment to sync. */
  onOpen(): void;
}

/**
 * How the runner reaches the server. Injected, so tests can drop, delay,
 * duplicate or reorder messages without touching the databases.
 */
export interface SyncTransport {
  push(request: PushRequest, token: string, signal: AbortSignal): Promise<PushResponse>;
  pull(request: PullRequest, token: string, signal: AbortSignal): Promise<PullResponse>;
  /** Opens the poke channel; returns the function that closes it. Optional. */
  pokes?(token: () => Promise<string>, clientId: string, handlers: PokeHandlers): () => void;
}

/** The few members of a WebSocket the poke channel needs (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  send(data: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface HttpTransportOptions {
  /** The server's base URL, e.g. `https://sync.example.com`. */
  readonly url: string;
  readonly fetch?: typeof fetch;
  /** A WebSocket constructor (`globalThis.WebSocket`, or `ws` in Node 20); pokes are off without one. */
  readonly webSocket?: new (url: string) => WebSocketLike;
  /**
   * Delay before reconnecting the poke channel after it closed. It doubles
   * (with jitter) while the server stays unreachable, up to
   * `maxReconnectMs`, and starts over once the server welcomes the device.
   * Default 1000 ms.
   */
  readonly reconnectMs?: number;
  /** The longest wait between reconnection attempts. Default 60,000 ms. */
  readonly maxReconnectMs?: number;
  /** For the jitter, in [0, 1). Default `Math.random`. */
  readonly random?: () => number;
  readonly setTimeout?: (fn: () => void, ms: number) => unknown;
  readonly clearTimeout?: (handle: unknown) => void;
}

/**
 * The HTTP transport of protocol v1: `POST /v1/push`, `POST /v1/pull`, and
 * pokes over a WebSocket at `/v1/poke`.
 *
 * @example
 * const transport = httpTransport({ url: 'http://localhost:8787', webSocket: WebSocket });
 */
export function httpTransport(options: HttpTransportOptions): SyncTransport {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const setT = options.setTimeout ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
  const clearT = options.clearTimeout ?? ((h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>));

  async function post(path: string, body: unknown, token: string, signal: AbortSignal): Promise<unknown> {
    let response: Response | undefined;
    const payload = JSON.stringify(body);
    // Push and pull are both safe to repeat (the ledger answers a replayed
    // push), so a request on a kept-alive connection the server had just
    // closed is tried once more on a fresh one.
    for (let attempt = 1; !response; attempt++) {
      try {
        response = await doFetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: payload,
          signal,
        });
      } catch (error) {
        if (attempt < 2 && !signal.aborted) continue;
        throw new TransportError('network', 0, `could not reach ${base}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      // The connection broke mid-answer (a streamed first sync the server
      // cut): nothing of it is used, and the request is retried.
      throw new TransportError('network', 0, `the answer to ${path} was cut off: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (response.ok) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new TransportError('internal', response.status, `the server answered ${path} with invalid JSON`);
      }
    }
    let code: ErrorCode = 'internal';
    let message = `HTTP ${response.status}`;
    try {
      const err = parseErrorBody(JSON.parse(text) as unknown);
      code = err.error.code;
      message = err.error.message;
    } catch {
      // Not one of ours (a proxy, say): keep the status.
    }
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new TransportError(code, response.status, message, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined);
  }

  return {
    push: async (request, token, signal) => parsePushResponse(await post('/v1/push', request, token, signal)),
    pull: async (request, token, signal) => parsePullResponse(await post('/v1/pull', request, token, signal)),
    pokes: options.webSocket
      ? (token, clientId, handlers) => {
          const Ws = options.webSocket as new (url: string) => WebSocketLike;
          let closed = false;
          let socket: WebSocketLike | undefined;
          let timer: unknown;
          /** Connections closed since the server last welcomed the device. */
          let failures = 0;
          const backoff = (): number =>
            backoffMs(failures, options.reconnectMs ?? RECONNECT_DEFAULTS.reconnectMs, options.maxReconnectMs ?? RECONNECT_DEFAULTS.maxReconnectMs, options.random ?? Math.random);
          const connect = (): void => {
            if (closed) return;
            const ws = new Ws(`${base.replace(/^http/, 'ws')}/v1/poke`);
            socket = ws;
            ws.onopen = () => {
              token().then(
                (t) => ws.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, clientId, token: t })),
                () => ws.close(),
              );
            };
            ws.onmessage = (ev) => {
              try {
                const msg = parseServerMessage(JSON.parse(String(ev.data)) as unknown);
                if ('type' in msg && msg.type === 'welcome') {
                  failures = 0;
                  handlers.onOpen();
                } else if ('type' in msg && msg.type === 'poke') handlers.onPoke();
              } catch {
                // Ignore what we do not understand; pulls stay correct without pokes.
              }
            };
            ws.onerror = () => undefined;
            ws.onclose = () => {
              if (closed) return;
              failures++;
              timer = setT(connect, backoff());
            };
          };
          connect();
          return () => {
            closed = true;
            clearT(timer);
            socket?.close();
          };
        }
      : undefined,
  } as SyncTransport;
}
