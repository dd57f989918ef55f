import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { TransportError } from '@dovetail/client';
import { createRunnerWorld, INTERVAL, networkDown, rateLimited, tokenExpired, unavailable } from './support/runner-world.js';
import type { RunnerWorld } from './support/runner-world.js';

/**
 * The device's sync runner under random events (see scheduling.test.ts for
 * the rules, case by case). Environment: DOVETAIL_SCHEDULING_RUNS (default
 * 100), DOVETAIL_SCHEDULING_SEED to replay a failure.
 */

let world: RunnerWorld;
beforeAll(async () => {
  world = await createRunnerWorld('schedprop');
}, 120_000);
afterAll(() => world.close());

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
      return tokenExpired();
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
  const d = await world.device({ writeDelayMs: 0 });
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
  const onServer = await world.sql.query<{ n: number | string }>('SELECT count(*) AS n FROM projects WHERE owner_id = $1', [d.user]);
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
