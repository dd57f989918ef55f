import { describe, expect, it } from 'vitest';
import { httpTransport } from '@dovetail/client';
import type { WebSocketLike } from '@dovetail/client';

/**
 * The poke channel of the HTTP transport: how it reconnects. The network
 * is faked (a WebSocket the test opens, welcomes and closes) and so are
 * the timers (the test sees each delay and runs it).
 */

class FakeSocket implements WebSocketLike {
  static opened: FakeSocket[] = [];
  readonly sent: string[] = [];
  closedByClient = false;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.opened.push(this);
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(): void {
    this.closedByClient = true;
  }
  /** The server answers the hello. */
  welcome(): void {
    this.onmessage?.({ data: JSON.stringify({ type: 'welcome', protocolVersion: 1 }) });
  }
  poke(): void {
    this.onmessage?.({ data: JSON.stringify({ type: 'poke', protocolVersion: 1 }) });
  }
  /** The connection is gone (the server is down, restarting, or closed it). */
  drop(): void {
    this.onclose?.({});
  }
}

function channel(options: { maxReconnectMs?: number } = {}) {
  FakeSocket.opened = [];
  const delays: number[] = [];
  let pending: (() => void) | undefined;
  const transport = httpTransport({
    url: 'http://sync.test',
    webSocket: FakeSocket,
    reconnectMs: 1000,
    ...options,
    random: () => 0.5, // three quarters of each wait
    setTimeout: (fn, ms) => {
      delays.push(ms);
      pending = fn;
      return delays.length;
    },
    clearTimeout: () => {
      pending = undefined;
    },
  });
  const events: string[] = [];
  const close = transport.pokes?.(() => Promise.resolve('token'), 'client-1', { onPoke: () => events.push('poke'), onOpen: () => events.push('open') });
  if (!close) throw new Error('the transport has no poke channel');
  const last = (): FakeSocket => FakeSocket.opened.at(-1) as FakeSocket;
  /** The reconnection timer falls due. */
  const fire = (): void => {
    const fn = pending;
    pending = undefined;
    fn?.();
  };
  return { close, delays, events, last, fire, hasTimer: () => pending !== undefined };
}

describe('the poke channel', () => {
  it('says hello with the token and client id, then passes on welcome and pokes', async () => {
    const c = channel();
    c.last().onopen?.({});
    await Promise.resolve();
    expect(JSON.parse(c.last().sent[0] ?? '{}')).toMatchObject({ type: 'hello', clientId: 'client-1', token: 'token' });
    c.last().welcome();
    c.last().poke();
    expect(c.events).toEqual(['open', 'poke']);
  });

  it('reconnects with a backoff that doubles while the server stays away, up to its cap, with jitter', () => {
    const c = channel({ maxReconnectMs: 8_000 });
    for (let i = 0; i < 6; i++) {
      c.last().drop();
      c.fire();
    }
    expect(c.delays).toEqual([750, 1_500, 3_000, 6_000, 6_000, 6_000]);
    expect(FakeSocket.opened).toHaveLength(7);
  });

  it('starts over once the server welcomes the device again', () => {
    const c = channel();
    c.last().drop();
    c.fire();
    c.last().drop();
    c.fire();
    c.last().welcome();
    c.last().drop();
    expect(c.delays).toEqual([750, 1_500, 750]);
  });

  it('stops for good when closed: no timer, no new socket', () => {
    const c = channel();
    c.last().drop();
    expect(c.hasTimer()).toBe(true);
    c.close();
    expect(c.hasTimer()).toBe(false);
    expect(c.last().closedByClient).toBe(true);
    c.last().drop();
    c.fire();
    expect(FakeSocket.opened).toHaveLength(1);
  });
});
