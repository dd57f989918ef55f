import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoff, createRunnerWorld, INTERVAL, networkDown, rateLimited, unavailable } from './support/runner-world.js';
import type { RunnerWorld } from './support/runner-world.js';

/**
 * When the device's sync runner syncs: on bind, on the interval, shortly
 * after a local write (never inside `mutate()`), on a poke, on a reopened
 * poke channel, after failures with backoff and jitter, one sync at a
 * time, and never after sign-out. Real device files and a real server;
 * time and the network are the test's (see support/runner-world.ts). The
 * same rules under random events: scheduling-property.test.ts.
 */

let world: RunnerWorld;
beforeAll(async () => {
  world = await createRunnerWorld('sched');
}, 120_000);
afterAll(() => world.close());

describe('when a device syncs', () => {
  it('on bind, then on the interval', async () => {
    const d = await world.device();
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
    const d = await world.device({ writeDelayMs: 200 });
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
    const d = await world.device();
    await d.advance(0);
    expect(d.board.poke()).toBe(true);
    await d.advance(0);
    expect(d.pulls()).toBe(2);
    expect(d.board.reopen()).toBe(true);
    await d.advance(0);
    expect(d.pulls()).toBe(3);
  });

  it('after failures, with a backoff that doubles (with jitter) and starts over after a success', async () => {
    const d = await world.device();
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
    const d = await world.device();
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
    const d = await world.device();
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
      const d = await world.device();
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
    const d = await world.device();
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
    const d = await world.device();
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
  it('a device whose pending and refused mutations touch more rows than a pull may name resyncs instead of failing for ever', { timeout: 60_000 }, async () => {
    const d = await world.device({}, { maxOpsPerMutation: 10_000 });
    await d.advance(0);
    // Eleven mutations of 10,001 rows each: the server refuses each as too_large, and
    // the next pull would have to name every row they touched (110,011 > 100,000).
    for (let m = 0; m < 11; m++) {
      await d.db.mutate('import', (b) => {
        for (let i = 0; i <= 10_000; i++) b.insert('projects', { id: `${d.user}-${m}-${i}`, owner_id: d.user, title: 'imported', public: false });
      });
    }
    const report = await d.db.sync.syncNow();
    expect(report.rejected.map((r) => r.reason)).toEqual(Array(11).fill('too_large'));
    expect(await d.db.outboxDepth()).toBe(0);
    // The refused rows are gone from the device, as the server never had them.
    expect(await d.db.rows('projects')).toEqual([]);
    const again = await d.db.sync.syncNow();
    expect(again.rejected).toEqual([]);
  });


  it('a device pushes in smaller batches until the server takes them (too_many_mutations), losing and refusing nothing', async () => {
    const d = await world.device({}, { maxMutationsPerPush: 4 });
    for (let i = 0; i < 10; i++) await d.write();
    const report = await d.db.sync.syncNow();
    expect(report.pushed).toBe(10);
    expect(await d.db.outboxDepth()).toBe(0);
    expect(await d.db.rejected()).toEqual([]);
    expect(Number((await world.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM projects WHERE owner_id = $1', [d.user]))[0]?.n)).toBe(10);
  });
});
