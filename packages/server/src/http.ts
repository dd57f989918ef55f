import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpStatusOf, ProtocolError } from '@dovetail/protocol';
import { ServerError } from './errors.js';
import { Pokes } from './pokes.js';
import { RateLimiter } from './rate-limit.js';
import type { RateLimit } from './rate-limit.js';
import type { SyncServer } from './sync-server.js';

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
      const body = await readJson(req, maxBody);
      const result = path === '/v1/push' ? await sync.push(req.headers.authorization, body) : await sync.pull(req.headers.authorization, body);
      send(res, 200, result);
    } catch (error) {
      const e = toServerError(error);
      code = e.code;
      status = httpStatusOf(e.code);
      if (status >= 500) sync.log.error('internal error', { path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      if (e.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(e.retryAfterSeconds));
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
      await pokes.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await idle;
    },
  };
}

function toServerError(error: unknown): ServerError {
  if (error instanceof ServerError) return error;
  if (error instanceof ProtocolError) return new ServerError(error.code, error.message);
  return new ServerError('internal', 'the server failed to handle this request; it was logged. Retry later');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) throw new ServerError('body_too_large', `the body is ${declared} bytes; the limit is ${max}. Push fewer mutations at once`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > max) throw new ServerError('body_too_large', `the body is over the limit of ${max} bytes. Push fewer mutations at once`);
    chunks.push(buf);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new ServerError('invalid_request', 'the body is not valid JSON');
  }
}
