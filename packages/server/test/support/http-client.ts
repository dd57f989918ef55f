import { expect } from 'vitest';
import WebSocket from 'ws';
import { httpStatusOf, parseErrorBody } from '@dovetail/protocol';
import type { ErrorCode, Mutation, Op } from '@dovetail/protocol';

/** What came back from one HTTP request. */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

export interface RequestInit {
  readonly method?: string;
  /** The whole Authorization header. */
  readonly authorization?: string;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as it is (malformed or oversized bodies). */
  readonly raw?: string | ReadableStream<Uint8Array>;
}

/** One request with `fetch`; the body is parsed as JSON when it is JSON. */
export async function call(baseUrl: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.authorization !== undefined) headers['authorization'] = init.authorization;
  const body = init.raw ?? (init.json === undefined ? undefined : JSON.stringify(init.json));
  const options: globalThis.RequestInit & { duplex?: 'half' } = {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
    // A stream body needs half duplex (Node's fetch).
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  };
  const res = await fetch(baseUrl + path, options);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    // not JSON: kept as text, and the assertions say so
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * The reply is an error: the status `httpStatusOf(code)` gives, a JSON
 * `{ error: { code, message } }` and nothing else, that the protocol's
 * parser accepts, with a message that says what to do (`hint`).
 */
export function expectError(reply: Reply, code: ErrorCode, hint: RegExp): void {
  expect(reply.body).toEqual({ error: { code, message: expect.stringMatching(hint) as unknown } });
  expect(reply.status).toBe(httpStatusOf(code));
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  expect(parseErrorBody(reply.body)).toEqual(reply.body);
}

export const pushBody = (clientId: string, mutations: readonly Mutation[]): Record<string, unknown> => ({ protocolVersion: 1, clientId, schemaVersion: 1, mutations });
export const pullBody = (clientId: string, cursor: string | null = null): Record<string, unknown> => ({ protocolVersion: 1, clientId, schemaVersion: 1, cursor });

let seq = 0;
/** A mutation with a fresh id. */
export const mutation = (name: string, ops: Op[]): Mutation => ({ id: `${name}-${process.pid}-${++seq}`, name, ops });

/** A stream that sends `chunks` pieces of `size` bytes, for chunked (length-less) bodies. */
export function chunkedBody(chunks: number, size: number, fill = 0x20): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ >= chunks) controller.close();
      else controller.enqueue(new Uint8Array(size).fill(fill));
    },
  });
}

/** Resolves with `promise`, or rejects after `ms` naming `what`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A device's poke socket (`/v1/poke`), with its messages queued so a test
 * can wait for the next one.
 */
export class PokeClient {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #queue: unknown[] = [];
  readonly #waiters: ((message: unknown) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as unknown;
      const waiter = this.#waiters.shift();
      if (waiter) waiter(message);
      else this.#queue.push(message);
    });
  }

  /** Opens a socket to the server at `baseUrl` (http://...). */
  static async open(baseUrl: string, path = '/v1/poke'): Promise<PokeClient> {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + path);
    const client = new PokeClient(ws);
    await within(10_000, 'the socket to open', new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }));
    return client;
  }

  /** Opens a socket and says hello; resolves once welcomed. */
  static async welcomed(baseUrl: string, token: string, clientId = 'device'): Promise<PokeClient> {
    const client = await PokeClient.open(baseUrl);
    client.hello(token, clientId);
    expect(await client.next('welcome')).toEqual({ type: 'welcome', protocolVersion: 1 });
    return client;
  }

  hello(token: string, clientId = 'device'): void {
    this.ws.send(JSON.stringify({ type: 'hello', protocolVersion: 1, clientId, token }));
  }

  /** Messages received and not yet taken. */
  get queued(): readonly unknown[] {
    return this.#queue;
  }

  /** The next message (waits for it, up to a generous timeout). */
  next(what = 'a message', ms = 10_000): Promise<unknown> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    let waiter: ((message: unknown) => void) | undefined;
    const message = new Promise<unknown>((resolve) => this.#waiters.push((waiter = resolve)));
    return within(ms, what, message).finally(() => {
      // A waiter that timed out must not take a later message.
      const i = this.#waiters.indexOf(waiter as (message: unknown) => void);
      if (i >= 0) this.#waiters.splice(i, 1);
    });
  }

  /** Closes from the device's side and waits for the socket to be closed. */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
    await within(10_000, 'the socket to close', this.closed);
  }
}
