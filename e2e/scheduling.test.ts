import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, TransportError } from '@dovetail/client';
import type { Database, DovetailClient, SyncOptions } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import { createAuthenticator, SyncServer } from '@dovetail/server';
import type { Sql } from '@dovetail/server';
import { openServerSql } from './support/database.js';
import { e2eSchema } from './support/schema.js';
import type { E2eSchema } from './support/schema.js';
import { Switchboard } from './support/switchboard.js';
import { VirtualTime } from './support/virtual-time.js';
import { SECRET, tokenFor } from './support/world.js';

/**
 * When the device's sync runner syncs: on bind, on the interval, shortly
 * after a local write (never inside `mutate()`), on a poke, on a reopened
 * poke channel, after failures with backoff and jitter, one sync at a
 * time, and never after sign-out. Real device files and a real server;
 * time and the network are the test's (VirtualTime, Switchboard).
 */

let sql: Sql;
let closeSql: (() => Promise<void>) | undefined;
let server: SyncServer;
const dirs: string[] = [];
const clients: DovetailClient<E2eSchema>[] = [];

beforeAll(async () => {
  ({ sql, close: closeSql } = await openServerSql('sched'));
  server = new SyncServer({ schema: e2eSchema, sql, authenticate: createAuthenticator({ secret: SECRET }) });
  await server.setup();
}, 120_000);

afterAll(async () => {
  for (const c of clients) await c.signOut().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await closeSql?.();
});

const INTERVAL = 30_000;
/** With `random` at 0.5, a backoff of `base` waits three quarters of it. */
const backoff = (failures: number): number => Math.round(Math.min(60_000, 500 * 2 ** (failures - 1)) * 0.75);

let users = 0;

interface TestDevice {
  readonly time: VirtualTime;
  readonly board: Switchboard;
  readonly client: DovetailClient<E2eSchema>;
  readonly db: Database<E2eSchema>;
  readonly user: string;
  /** Moves time on by `ms`, then waits for what that started to finish. */
  advance(ms: number): Promise<void>;
  write(): Promise<void>;
  pulls(): number;
}

async function device(options: Partial<SyncOptions> = {}): Promise<TestDevice> {
  const user = `sched-${process.pid}-${++users}`;
  const time = new VirtualTime();
  const board = new Switchboard(server, () => time.steady());
  const directory = mkdtempSync(join(tmpdir(), 'dovetail-sched-'));
  dirs.push(directory);
  const client = createClient({ schema: e2eSchema, driver: nodeDriver({ directory }), clock: time });
  clients.push(client);
  const token = await tokenFor(user);
  const db = await client.bind({
    userId: user,
    sync: { transport: board.transport(), getToken: () => token, refreshToken: () => Promise.resolve(token), timers: time, random: () => 0.5, intervalMs: INTERVAL, ...options },
  });
  let written = 0;
  return {
    time,
    board,
    client,
    db,
    user,
    async advance(ms) {
      time.advance(ms);
      await db.sync.whenIdle();
    },
    async write() {
      const id = `${user}-p${++written}`;
      await db.mutate('project', (m) => m.insert('projects', { id, owner_id: user, title: id, public: false }));
    },
    pulls: () => board.calls.filter((c) => c.kind === 'pull').length,
  };
}

const networkDown = (): TransportError => new TransportError('network', 0, 'network error: unreachable');
const unavailable = (): TransportError => new TransportError('internal', 503, 'the server is unavailable');
const rateLimited = (ms: number): TransportError => new TransportError('rate_limited', 429, 'too many requests', ms);

describe('when a device syncs', () => {
  it('on bind, then on the interval', async () => {
    const d = await device();
    expect(d.time.pending()).toEqual([0]);
    await d.advance(0);
    expect(d.pulls()).toBe(1);
    expect(d.time.pending()).toEqual([INTERVAL]);
    await d.advance(INTERVAL - 1);
    expect(d.pulls()).toBe(1);
    await d.advance(1);
    expect(d.pulls()).toBe(2);
  });

  it('shortly after a local write, never inside mutate(); writes within the delay share one sync', async () => {
    const d = await device({ writeDelayMs: 200 });
    await d.advance(0);
    const before = d.board.calls.length;
    await d.write();
    expect(d.board.calls.length).toBe(before); // mutate() sent nothing
    await d.advance(100);
    await d.write();
    expect(d.board.calls.length).toBe(before);
    await d.advance(100);
    expect(d.board.calls.slice(before).map((c) => c.kind)).toEqual(['push', 'pull']);
    expect(await d.db.outboxDepth()).toBe(0);
  });

  it('at once on a poke and when the poke channel reopens', async () => {
    const d = await device();
    await d.advance(0);
    expect(d.board.poke()).toBe(true);
    await d.advance(0);
    expect(d.pulls()).toBe(2);
    expect(d.board.reopen()).toBe(true);
    await d.advance(0);
    expect(d.pulls()).toBe(3);
  });

  it('after failures, with a backoff that doubles (with jitter) and starts over after a success', async () => {
    const d = await device();
    d.board.failures.push(networkDown(), unavailable(), networkDown());
    const retries: (number | undefined)[] = [];
    d.db.sync.events.on('error', (e) => retries.push(e.retryInMs));
    await d.advance(0);
    for (let k = 1; k <= 3; k++) {
      expect(d.time.pending()).toEqual([backoff(k)]);
      await d.advance(backoff(k) - 1);
      expect(d.board.calls.length).toBe(k);
      await d.advance(1);
    }
    expect(retries).toEqual([backoff(1), backoff(2), backoff(3)]);
    expect(d.pulls()).toBe(4);
    expect(d.time.pending()).toEqual([INTERVAL]);
    d.board.failures.push(networkDown());
    await d.advance(INTERVAL);
    expect(d.time.pending()).toEqual([backoff(1)]);
  });

  it('not at the pace of local writes while the server is failing: writes wait for the retry time', async () => {
    const d = await device();
    await d.advance(0);
    d.board.failures.push(unavailable(), unavailable());
    await d.write();
    await d.advance(0); // fails: retry in backoff(1)
    const failedAt = d.board.calls.length;
    for (let i = 0; i < 5; i++) {
      await d.write();
      await d.advance(10);
    }
    expect(d.board.calls.length).toBe(failedAt);
    expect(d.time.pending()).toEqual([backoff(1) - 50]);
    await d.advance(backoff(1) - 50); // fails again
    expect(d.board.calls.length).toBe(failedAt + 1);
    await d.advance(backoff(2));
    expect(await d.db.outboxDepth()).toBe(0);
  });

  it("not before the server's Retry-After, even when poked; after a network error a poke ends the wait", async () => {
    const d = await device();
    await d.advance(0);
    d.board.failures.push(rateLimited(5_000));
    d.board.poke();
    await d.advance(0);
    const limitedAt = d.board.calls.length;
    d.board.poke();
    d.board.reopen();
    await d.write();
    await d.advance(4_999);
    expect(d.board.calls.length).toBe(limitedAt);
    await d.advance(1);
    expect(d.board.calls.length).toBeGreaterThan(limitedAt);

    d.board.failures.push(networkDown());
    d.board.poke();
    await d.advance(0);
    const downAt = d.board.calls.length;
    expect(d.time.pending()).toEqual([backoff(1)]);
    d.board.poke(); // the server reached the device: the network is back
    await d.advance(0);
    expect(d.board.calls.length).toBeGreaterThan(downAt);
  });

  it('after its backoff even if the device clock is set back or forward meanwhile', async () => {
    for (const jump of [-3_600_000, 3_600_000]) {
      const d = await device();
      await d.advance(0);
      d.board.failures.push(rateLimited(5_000));
      await d.write();
      await d.advance(0);
      const failedAt = d.board.calls.length;
      d.time.setClock(jump);
      await d.write();
      d.board.poke();
      await d.advance(4_999);
      expect(d.board.calls.length).toBe(failedAt);
      await d.advance(1);
      expect(d.board.calls.length).toBeGreaterThan(failedAt);
      expect(await d.db.outboxDepth()).toBe(0);
      // And the interval goes on from there (set back an hour, this clock reads before 1970).
      expect(d.time.pending()).toEqual([INTERVAL]);
    }
  });

  it('one sync at a time: what arrives during one is served by one more sync after it', async () => {
    const d = await device();
    await d.advance(0);
    let synced = 0;
    d.db.sync.events.on('synced', () => synced++);
    d.board.holding = true;
    d.board.poke();
    d.time.advance(0); // the sync starts, and its pull waits
    for (let waited = 0; d.board.held === 0 && waited < 5_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(d.board.held).toBe(1);
    for (let i = 0; i < 3; i++) {
      d.board.poke();
      await d.write();
      d.time.advance(0);
    }
    d.board.holding = false;
    d.board.release();
    await d.db.sync.whenIdle();
    expect(synced).toBe(1);
    await d.advance(0);
    expect(synced).toBe(2);
    await d.advance(0);
    expect(synced).toBe(2);
    expect(d.board.maxInFlight).toBe(1);
    expect(await d.db.outboxDepth()).toBe(0);
  });

  it('never after sign-out: no timer, no poke channel, no request', async () => {
    const d = await device();
    await d.advance(0);
    await d.write();
    await d.client.signOut();
    const after = d.board.calls.length;
    expect(d.board.channelOpen).toBe(false);
    expect(d.board.poke()).toBe(false);
    d.time.advance(10 * INTERVAL);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(d.board.calls.length).toBe(after);
    expect(d.time.pending()).toEqual([]);
  });
});

describe("the server's limits", () => {
  it('a device pushes in smaller batches until the server takes them (too_many_mutations), losing and refusing nothing', async () => {
    const strict = new SyncServer({ schema: e2eSchema, sql, authenticate: createAuthenticator({ secret: SECRET }), limits: { maxMutationsPerPush: 4 } });
    const user = `sched-limits-${process.pid}`;
    const time = new VirtualTime();
    const board = new Switchboard(strict, () => time.steady());
    const directory = mkdtempSync(join(tmpdir(), 'dovetail-sched-'));
    dirs.push(directory);
    const client = createClient({ schema: e2eSchema, driver: nodeDriver({ directory }), clock: time });
    clients.push(client);
    const token = await tokenFor(user);
    const db = await client.bind({ userId: user, sync: { transport: board.transport(), getToken: () => token, timers: time, random: () => 0.5 } });
    for (let i = 0; i < 10; i++) await db.mutate('project', (m) => m.insert('projects', { id: `${user}-${i}`, owner_id: user, title: 't', public: false }));
    const report = await db.sync.syncNow();
    expect(report.pushed).toBe(10);
    expect(await db.outboxDepth()).toBe(0);
    expect(await db.rejected()).toEqual([]);
    expect(Number((await sql.query<{ n: string | number }>('SELECT count(*) AS n FROM projects WHERE owner_id = $1', [user]))[0]?.n)).toBe(10);
  });
});

type Event =
  | { readonly e: 'write' }
  | { readonly e: 'advance'; readonly ms: number }
  | { readonly e: 'poke' }
  | { readonly e: 'reopen' }
  | { readonly e: 'fail'; readonly kind: 'network' | 'unavailable' | 'limited' | 'expired'; readonly count: number; readonly retryAfter: number }
  | { readonly e: 'hold' }
  | { readonly e: 'release' }
  | { readonly e: 'syncNow' }
  | { readonly e: 'signOut' }
  /** The device's clock is set forward or back (timers keep their steady time). */
  | { readonly e: 'setClock'; readonly ms: number };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ e: 'write' as const }) },
  { weight: 4, arbitrary: fc.constantFrom(0, 1, 100).map((ms) => ({ e: 'advance' as const, ms })) },
  { weight: 3, arbitrary: fc.constantFrom(375, 1_000, 5_000, INTERVAL, 60_000).map((ms) => ({ e: 'advance' as const, ms })) },
  { weight: 3, arbitrary: fc.constant({ e: 'poke' as const }) },
  { weight: 1, arbitrary: fc.constant({ e: 'reopen' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({ e: fc.constant('fail' as const), kind: fc.constantFrom('network' as const, 'unavailable' as const, 'limited' as const, 'expired' as const), count: fc.integer({ min: 1, max: 3 }), retryAfter: fc.constantFrom(1_000, 10_000) }),
  },
  { weight: 1, arbitrary: fc.constant({ e: 'hold' as const }) },
  { weight: 2, arbitrary: fc.constant({ e: 'release' as const }) },
  { weight: 2, arbitrary: fc.constant({ e: 'syncNow' as const }) },
  { weight: 1, arbitrary: fc.constant({ e: 'signOut' as const }) },
  { weight: 1, arbitrary: fc.constantFrom(-3_600_000, -1_000, 1_000, 3_600_000).map((ms) => ({ e: 'setClock' as const, ms })) },
);

function failure(kind: 'network' | 'unavailable' | 'limited' | 'expired', retryAfter: number): TransportError {
  switch (kind) {
    case 'network':
      return networkDown();
    case 'unavailable':
      return unavailable();
    case 'limited':
      return rateLimited(retryAfter);
    case 'expired':
      return new TransportError('token_expired', 401, 'the token has expired; refresh it and retry');
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2));

/**
 * Runs `events` on a fresh device and checks after each: one request at a
 * time; at most one timer; no automatic sync before the retry time of the
 * last failure (unless the app asked, or a poke followed a network
 * error); nothing after sign-out. At the end, with faults gone, every
 * write reaches the server, and a last poke is followed by a pull.
 */
async function runEvents(events: readonly Event[]): Promise<void> {
  const d = await device({ writeDelayMs: 0 });
  const trace: string[] = [];
  const fail = (what: string): never => {
    throw new Error(`${what}\n--- events ---\n${trace.join('\n')}`);
  };
  let written = 0;
  let signedOut = false;
  let explicit = 0;
  /** The last failure: when the runner may sync again, and whether the server was unreachable. */
  let gate: { until: number; network: boolean; woken: boolean } | undefined;
  let problem: string | undefined;
  d.db.sync.events.on('error', (e) => {
    const network = e.error instanceof TransportError && e.error.code === 'network';
    gate = { until: d.time.steady() + (e.retryInMs ?? 0), network, woken: false };
  });
  d.db.sync.events.on('synced', () => (gate = undefined));
  d.board.onCall = (call) => {
    if (signedOut) problem ??= `a ${call.kind} was sent after sign-out`;
    if (gate && call.at < gate.until && explicit === 0 && !(gate.network && gate.woken)) {
      problem ??= `a ${call.kind} started at ${call.at}, before the retry time ${gate.until} of the last failure, unasked`;
    }
  };
  const check = (): void => {
    if (problem) fail(problem);
    if (d.board.maxInFlight > 1) fail(`${d.board.maxInFlight} requests of one device were in flight at once`);
    if (d.time.pending().length > 1) fail(`the runner holds ${d.time.pending().length} timers`);
  };
  const waitIdle = async (): Promise<void> => {
    if (d.board.holding || d.board.held > 0) await settle();
    else await d.db.sync.whenIdle();
  };
  for (const event of events) {
    trace.push(`t=${d.time.steady()} ${JSON.stringify(event)}`);
    switch (event.e) {
      case 'write':
        if (signedOut) break;
        await d.write();
        written++;
        break;
      case 'advance':
        d.time.advance(event.ms);
        await waitIdle();
        break;
      case 'poke':
      case 'reopen':
        if (event.e === 'poke' ? d.board.poke() : d.board.reopen()) if (gate) gate.woken = true;
        break;
      case 'fail':
        for (let i = 0; i < event.count; i++) d.board.failures.push(failure(event.kind, event.retryAfter));
        break;
      case 'hold':
        d.board.holding = true;
        break;
      case 'release':
        d.board.holding = false;
        d.board.release();
        await waitIdle();
        break;
      case 'syncNow':
        if (signedOut) break;
        explicit++;
        void d.db.sync.syncNow().then(
          () => explicit--,
          () => explicit--,
        );
        await settle();
        break;
      case 'setClock':
        d.time.setClock(event.ms);
        break;
      case 'signOut': {
        if (signedOut) break;
        d.board.holding = false;
        d.board.release();
        await d.client.signOut();
        signedOut = true;
        break;
      }
    }
    check();
    if (signedOut) {
      const after = d.board.calls.length;
      d.time.advance(2 * INTERVAL);
      d.board.poke();
      await settle();
      if (d.board.calls.length !== after) fail('a request was sent after sign-out');
      check();
      if (d.time.pending().length > 0 || d.board.channelOpen) fail('a timer or the poke channel outlived sign-out');
    }
  }
  if (signedOut) return;
  // At rest: faults gone, everything written reaches the server.
  d.board.failures.length = 0;
  d.board.holding = false;
  d.board.release();
  for (let i = 0; i < 3; i++) await d.advance(60_000);
  check();
  const onServer = await sql.query<{ n: number | string }>('SELECT count(*) AS n FROM projects WHERE owner_id = $1', [d.user]);
  if (Number(onServer[0]?.n) !== written) fail(`${written} projects written, ${String(onServer[0]?.n)} on the server`);
  if ((await d.db.outboxDepth()) !== 0) fail(`${await d.db.outboxDepth()} mutations still in the outbox at rest`);
  const pulls = d.pulls();
  d.board.poke();
  await d.advance(0);
  if (d.pulls() !== pulls + 1) fail('a poke at rest was not followed by one pull');
  await d.client.signOut();
}

describe('scheduling under random events (property)', () => {
  const numRuns = Number(process.env['DOVETAIL_SCHEDULING_RUNS'] ?? 100);
  const seed = process.env['DOVETAIL_SCHEDULING_SEED'] !== undefined ? Number(process.env['DOVETAIL_SCHEDULING_SEED']) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;

  it('one request at a time, one timer, retry times kept, nothing after sign-out, nothing lost', { timeout: 5 * 60_000 }, async () => {
    console.log(`scheduling property: ${numRuns} runs, seed ${seed} (replay: DOVETAIL_SCHEDULING_SEED=${seed})`);
    const result = await fc.check(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 40 }), (events) => runEvents(events)),
      { numRuns, seed },
    );
    if (result.failed) {
      const error = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
      console.log(`SCHEDULING PROPERTY FAILED: seed=${result.seed} path="${result.counterexamplePath ?? ''}"\n${error}`);
      throw new Error(`${fc.defaultReportMessage(result)}\n${error}`);
    }
  });
});
