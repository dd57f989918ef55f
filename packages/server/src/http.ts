import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpStatusOf, ProtocolError } from '@dovetail/protocol';
import { ServerError } from './errors.js';
import { Pokes } from './pokes.js';
import { RateLimiter } from './rate-limit.js';
import type { RateLimit } from './rate-limit.js';
import type { SyncServer } from './sync-server.js';
import type { Identity } from './auth.js';

export interface HttpServerOptions {
  readonly port?: number;
  readonly host?: string;
  /** Largest request body accepted, in bytes. Default 8 MiB. */
  readonly maxBodyBytes?: number;
  /** Requests per user. Default 50 per second with bursts of 200. */
  readonly rateLimit?: RateLimit;
  /** Milliseconds since the epoch (for rate limits). */
  readonly now?: () => number;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly pokes: Pokes;
  /** Stops accepting, closes sockets, waits for requests in flight. */
  close(): Promise<void>;
}

/**
 * Serves a SyncServer over HTTP: `POST /v1/push`, `POST /v1/pull`,
 * `GET /health`, and pokes over a WebSocket at `/v1/poke`.
 */
export async function startHttpServer(sync: SyncServer, options: HttpServerOptions = {}): Promise<RunningServer> {
  const maxBody = options.maxBodyBytes ?? 8 * 1024 * 1024;
  const limiter = new RateLimiter(options.rateLimit ?? { perSecond: 50, burst: 200 }, options.now ?? Date.now);
  const pokes = await Pokes.start(sync);
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const server: Server = createServer((req, res) => {
    inFlight++;
    handle(req, res)
      .catch((error: unknown) => sync.log.error('request failed', { error: String(error) }))
      .finally(() => {
        inFlight--;
        if (inFlight === 0) drained?.();
      });
  });
  server.on('upgrade', (req, socket, head) => pokes.upgrade(req, socket, head));
  // Devices sync every few seconds to minutes; keep their connections longer
  // than clients usually do, so the server is not the side that closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  /**
   * A pull, written as the server produces it (a first sync streams).
   * Until the first piece, failures are answered as usual; after it, the
   * status is sent, so a failure cuts the connection instead: the device
   * gets a broken response and retries, never a short one that parses.
   */
  async function pullTo(res: ServerResponse, body: unknown, identity: Identity): Promise<void> {
    let started = false;
    const write = async (text: string): Promise<void> => {
      if (res.destroyed) throw new Error('the device went away during the pull');
      if (!started) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        started = true;
      }
      if (!res.write(text)) await whenDrained(res);
    };
    try {
      await sync.pullTo(identity, body, write);
      res.end();
    } catch (error) {
      if (!started) throw error;
      sync.log.error('pull failed after its answer began; connection cut', { error: error instanceof Error ? error.message : String(error) });
      res.destroy();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0];
    let status = 200;
    let code: string | undefined;
    try {
      if (req.method === 'GET' && path === '/health') {
        await sync.sql.query('SELECT 1');
        return send(res, 200, { status: 'ok', database: sync.sql.kind, schemaVersion: sync.schema.version, connectedDevices: pokes.size });
      }
      if (req.method !== 'POST' || (path !== '/v1/push' && path !== '/v1/pull')) {
        throw new ServerError('not_found', `no route ${req.method ?? ''} ${path ?? ''}; the routes are POST /v1/push, POST /v1/pull, GET /health and the WebSocket /v1/poke`);
      }
      const identity = await sync.authenticate(req.headers.authorization);
      const wait = limiter.take(identity.userId);
      if (wait > 0) throw new ServerError('rate_limited', `too many requests; retry in ${Math.ceil(wait / 1000)} s`, { retryAfterSeconds: Math.ceil(wait / 1000) });
      const body = await readJson(req, maxBody, path === '/v1/push' ? 'push fewer mutations at once' : 'ask to refresh fewer rows, or pull with cursor null');
      if (path === '/v1/push') return send(res, 200, await sync.pushFor(identity, body));
      await pullTo(res, body, identity);
    } catch (error) {
      const e = toServerError(error);
      code = e.code;
      status = httpStatusOf(e.code);
      if (status >= 500) sync.log.error('internal error', { path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      if (e.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(e.retryAfterSeconds));
      if (!req.complete) settleUnreadBody(req, res, maxBody);
      send(res, status, { error: { code: e.code, message: e.message } });
    } finally {
      sync.log.info('request', { method: req.method, path, status, code, ms: Math.round((performance.now() - started) * 10) / 10 });
    }
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    pokes,
    async close() {
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => (drained = r));
      // Stop accepting first, so nothing new starts while we wind down.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await pokes.close();
      await idle;
      await sync.settled();
      // Requests in flight have been answered. A kept-alive connection that
      // became idle meanwhile, or one whose body was not read to the end,
      // would otherwise hold the port open until the client gives up on it.
      server.closeAllConnections();
      await closed;
    },
  };
}

const DISCARD_MS = 10_000;

/**
 * A request refused before its body was read (too large, no token, rate
 * limited): the client may still be sending. Closing at once would make
 * it fail with EPIPE instead of reading the answer, so the rest is read and
 * dropped, up to a bound in bytes and time; a body declared larger than
 * that bound gets `Connection: close` instead.
 */
function settleUnreadBody(req: IncomingMessage, res: ServerResponse, maxBody: number): void {
  const budget = Math.max(maxBody, 16 * 1024 * 1024);
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > budget) {
    res.setHeader('Connection', 'close');
    return;
  }
  let left = budget;
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_MS).unref();
  const stop = (): void => clearTimeout(timer);
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) req.socket.destroy();
  });
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}

function toServerError(error: unknown): ServerError {
  if (error instanceof ServerError) return error;
  if (error instanceof ProtocolError) return new ServerError(error.code, error.message);
  return new ServerError('internal', 'the server failed to handle this request; it was logged. Retry later');
}

/** Resolves when the response can take more, rejects if the device goes away first. */
function whenDrained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error('the device went away during the pull'));
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Reads the body as JSON, at most `max` bytes (over it, the error says what
 * to do: `remedy`). Over the limit it stops
 * reading without destroying the socket, so the answer still reaches the
 * client (see `settleUnreadBody`).
 */
async function readJson(req: IncomingMessage, max: number, remedy: string): Promise<unknown> {
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > max) {
    throw new ServerError('body_too_large', `the body is ${declared} bytes; the limit is ${max}: ${remedy}`);
  }
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onFail);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        done();
        req.pause();
        reject(new ServerError('body_too_large', `the body is over the limit of ${max} bytes: ${remedy}`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onFail = (): void => {
      done();
      reject(new ServerError('invalid_request', 'the connection broke before the whole body arrived; send the request again'));
    };
    const onClose = (): void => {
      if (!req.complete) onFail();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onFail);
    req.on('close', onClose);
    // The client may have gone while its token was checked: no event will come.
    if (req.destroyed && !req.complete) onFail();
  });
  const text = body.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new ServerError('invalid_request', 'the body is not valid JSON; send one JSON object, UTF-8 encoded, with Content-Type: application/json');
  }
  const twice = duplicateKey(text);
  if (twice !== undefined) {
    throw new ServerError('invalid_request', `the key ${JSON.stringify(twice.length > 40 ? `${twice.slice(0, 40)}...` : twice)} appears twice in one object; send each field once`);
  }
  return value;
}

/**
 * The first key that appears twice in one object of `text`, which is valid
 * JSON (`JSON.parse` silently keeps the last one; the protocol refuses the
 * message). Iterative, so any nesting depth is fine; linear in the text.
 */
function duplicateKey(text: string): string | undefined {
  const objects: (Set<string> | undefined)[] = []; // undefined for an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // The closing quote: the next one not escaped by an odd run of backslashes.
      let end = text.indexOf('"', i + 1);
      for (;;) {
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      const keys = objects[objects.length - 1];
      if (expectKey && keys) {
        const raw = text.slice(i + 1, end);
        // "a" and "\u0061" are the same key.
        const key = raw.includes('\\') ? String(JSON.parse(`"${raw}"`)) : raw;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(undefined);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = objects[objects.length - 1] !== undefined;
    }
  }
  return undefined;
}
