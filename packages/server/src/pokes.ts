import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { parseClientMessage, PROTOCOL_VERSION, ProtocolError } from '@dovetail/protocol';
import { audienceOf } from './audience.js';
import { ChangeFeed } from './change-feed.js';
import { ServerError } from './errors.js';
import { changesChannel, currentSchema } from './setup.js';
import type { SyncServer } from './sync-server.js';

const HELLO_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;

/**
 * Pokes: a WebSocket per device, bound to the user of the token it said
 * hello with. Commits are signalled through Postgres LISTEN/NOTIFY, so a
 * write through any server instance (or straight into Postgres) wakes every
 * instance, which reads what changed from the change log and pokes the
 * devices of the users who may see it: all but the device whose pushes
 * alone wrote it, which pulls after each push anyway.
 */
export class Pokes {
  readonly #sync: SyncServer;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  /** Devices that said hello, with their user and client id. */
  readonly #sockets = new Map<WebSocket, { readonly user: string; readonly clientId: string }>();
  /** Every open socket, welcomed or not (closed on shutdown). */
  readonly #all = new Set<WebSocket>();
  #unlisten: (() => Promise<void>) | undefined;
  readonly #feed: ChangeFeed;
  /** A signal came since the last flush began. */
  #pending = false;
  /** The flush under way (one at a time: the next waits and reads everything that committed meanwhile). */
  #flushing: Promise<void> | undefined;
  #closed = false;
  #sent = 0;

  private constructor(sync: SyncServer, feed: ChangeFeed) {
    this.#sync = sync;
    this.#feed = feed;
  }

  static async start(sync: SyncServer): Promise<Pokes> {
    const pokes = new Pokes(sync, await ChangeFeed.open(sync.sql));
    pokes.#unlisten = await sync.sql.listen(changesChannel(await currentSchema(sync.sql)), () => pokes.#changed());
    // A commit between opening the feed and listening was not signalled: read once.
    pokes.#changed();
    return pokes;
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Pokes sent since start (one per device poked). */
  get sent(): number {
    return this.#sent;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closed || (req.url ?? '').split('?')[0] !== '/v1/poke') {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
  }

  #accept(ws: WebSocket): void {
    if (this.#closed) {
      ws.terminate();
      return;
    }
    this.#all.add(ws);
    const timer = setTimeout(() => ws.close(4001, 'no hello'), HELLO_TIMEOUT_MS);
    // Registered before anything async: a device that leaves while its
    // token is being checked must not stay in the map.
    ws.on('close', () => {
      clearTimeout(timer);
      this.#all.delete(ws);
      this.#sockets.delete(ws);
    });
    ws.on('error', () => ws.terminate());
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      void (async () => {
        try {
          const hello = parseClientMessage(parseFrame(data));
          const identity = await this.#sync.authenticate(`Bearer ${hello.token}`);
          if (ws.readyState !== ws.OPEN) return;
          this.#sockets.set(ws, { user: identity.userId, clientId: hello.clientId });
          ws.send(JSON.stringify({ type: 'welcome', protocolVersion: PROTOCOL_VERSION }));
        } catch (error) {
          const e = asErrorBody(error);
          if (e.error.code === 'internal') this.#sync.log.error('poke hello failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
          if (ws.readyState !== ws.OPEN) return;
          ws.send(JSON.stringify(e));
          ws.close(4003, 'refused');
        }
      })();
    });
  }

  /** Gathers the signals of one tick, then reads what committed and pokes the devices whose users may see it. */
  #changed(): void {
    if (this.#closed || this.#pending) return;
    this.#pending = true;
    if (!this.#flushing) setImmediate(() => this.#startFlush());
  }

  #startFlush(): void {
    if (!this.#pending || this.#closed) return;
    this.#pending = false;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      if (this.#pending) setImmediate(() => this.#startFlush());
    });
  }

  async #flush(): Promise<void> {
    const users = [...new Set([...this.#sockets.values()].map((d) => d.user))];
    let audience: Set<string>;
    /** The one device whose pushes wrote everything read: it pulls after pushing, so it is not poked. */
    let writer: string | null = null;
    try {
      if (users.length === 0) return await this.#feed.skip();
      const announced = await this.#feed.read();
      if (announced.writers.size === 1) writer = [...announced.writers][0] ?? null;
      audience = await audienceOf(this.#sync.sql, this.#sync.schema, announced, users);
    } catch (error) {
      // A poke only says "pull now": if what changed, or who may see it,
      // cannot be worked out, everyone pulls rather than someone missing a
      // change. (The feed has not moved: the next read covers it again.)
      this.#sync.log.warn('could not work out who to poke; poking every device', { error: error instanceof Error ? error.message : String(error) });
      audience = new Set(users);
    }
    if (audience.size === 0) return;
    const poke = JSON.stringify({ type: 'poke', protocolVersion: PROTOCOL_VERSION });
    for (const [ws, { user, clientId }] of this.#sockets) {
      if (!audience.has(user) || clientId === writer || ws.readyState !== ws.OPEN) continue;
      ws.send(poke);
      this.#sent++;
    }
  }

  /** Stops listening, and closes every socket (`1001`), welcomed or still saying hello. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#unlisten?.();
    await this.#flushing;
    const sockets = [...this.#all];
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === ws.CLOSED) return resolve();
            // A device that does not answer the close handshake is cut off.
            const cut = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS);
            ws.once('close', () => {
              clearTimeout(cut);
              resolve();
            });
            ws.close(1001, 'server shutting down');
          }),
      ),
    );
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}

function parseFrame(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch {
    throw new ProtocolError('invalid_request', 'the hello is not valid JSON; send one JSON object: {"type":"hello","protocolVersion":1,"clientId":...,"token":...}');
  }
}

/** The error body for a refused hello: the error's own code, or `internal` for a failure of the server. */
function asErrorBody(error: unknown): { error: { code: string; message: string } } {
  if (error instanceof ServerError || error instanceof ProtocolError) return { error: { code: error.code, message: error.message } };
  return { error: { code: 'internal', message: 'the server failed to check the hello; it was logged. Reconnect later' } };
}
