import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { parseClientMessage, PROTOCOL_VERSION } from '@dovetail/protocol';
import { CHANGES_CHANNEL } from './setup.js';
import type { SyncServer } from './sync-server.js';

const HELLO_TIMEOUT_MS = 10_000;

/**
 * Pokes: a WebSocket per device, bound to the user of the token it said
 * hello with. Committed changes arrive through Postgres LISTEN/NOTIFY, so a
 * write through any server instance (or straight into Postgres) pokes every
 * instance's devices.
 */
export class Pokes {
  readonly #sync: SyncServer;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  readonly #sockets = new Map<WebSocket, string>();
  #unlisten: (() => Promise<void>) | undefined;
  #pending: Set<string> | undefined;

  private constructor(sync: SyncServer) {
    this.#sync = sync;
  }

  static async start(sync: SyncServer): Promise<Pokes> {
    const pokes = new Pokes(sync);
    pokes.#unlisten = await sync.sql.listen(CHANGES_CHANNEL, (table) => pokes.#changed(table));
    return pokes;
  }

  get size(): number {
    return this.#sockets.size;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if ((req.url ?? '').split('?')[0] !== '/v1/poke') {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
  }

  #accept(ws: WebSocket): void {
    const timer = setTimeout(() => ws.close(4001, 'no hello'), HELLO_TIMEOUT_MS);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      void (async () => {
        try {
          const hello = parseClientMessage(JSON.parse(data.toString('utf8')) as unknown);
          const identity = await this.#sync.authenticate(`Bearer ${hello.token}`);
          this.#sockets.set(ws, identity.userId);
          ws.on('close', () => this.#sockets.delete(ws));
          ws.send(JSON.stringify({ type: 'welcome', protocolVersion: PROTOCOL_VERSION }));
        } catch (error) {
          const e = error as { code?: string; message?: string };
          ws.send(JSON.stringify({ error: { code: e.code ?? 'invalid_request', message: e.message ?? 'bad hello' } }));
          ws.close(4003, 'refused');
        }
      })();
    });
  }

  /** Coalesces notifications within one tick, then pokes every device whose user may see the table. */
  #changed(table: string): void {
    if (!this.#pending) {
      this.#pending = new Set();
      setImmediate(() => this.#flush());
    }
    this.#pending.add(table);
  }

  #flush(): void {
    const tables = this.#pending ?? new Set<string>();
    this.#pending = undefined;
    const visible = [...tables].some((t) => this.#sync.schema.hasTable(t) && this.#sync.schema.table(t).visibility.kind !== 'none');
    if (!visible) return;
    const poke = JSON.stringify({ type: 'poke', protocolVersion: PROTOCOL_VERSION });
    for (const ws of this.#sockets.keys()) if (ws.readyState === ws.OPEN) ws.send(poke);
  }

  async close(): Promise<void> {
    await this.#unlisten?.();
    for (const ws of this.#sockets.keys()) ws.close(1001, 'server shutting down');
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
