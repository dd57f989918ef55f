import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createAuthenticator, SyncServer } from '@dovetail/server';
import { openServerSql } from '../support/database.js';
import type { Sql } from '@dovetail/server';
import { SECRET } from '../support/world.js';
import { e2eSchema } from '../support/schema.js';
import { scenarioArb } from './commands.js';
import { FOUND_SCENARIOS } from './scenarios.js';
import { truncateAll } from './invariants.js';
import { coverage, runModel } from './run.js';

/**
 * Model-based test of the whole sync path: two SyncServer instances on one
 * shared database (embedded PGlite, or Postgres when DATABASE_URL is set),
 * taking requests in turn, and real devices (SQLite files), driven by
 * random commands: local writes on small id pools, offline/online,
 * dropped, duplicated, late and held requests, apps closed in the middle
 * of a sync, restarts of either instance, account switches.
 * After every command the invariants that hold at every step are checked;
 * at the end, faults stop and everything must converge (see run.ts).
 *
 * Environment:
 * - DOVETAIL_MODEL_RUNS: number of runs (default 200 on CI, 40 otherwise);
 * - DOVETAIL_MODEL_SEED (and DOVETAIL_MODEL_PATH): replay a failure;
 * - DOVETAIL_MODEL_TRACE=1: print every run's trace (commands, server answers, syncs);
 * - DATABASE_URL: run against Postgres (in a schema of its own).
 */

const env = process.env;
const numRuns = Number(env['DOVETAIL_MODEL_RUNS'] ?? (env['CI'] ? 200 : 40));
const seed = env['DOVETAIL_MODEL_SEED'] !== undefined ? Number(env['DOVETAIL_MODEL_SEED']) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
const path = env['DOVETAIL_MODEL_PATH'];

let sql: Sql;
let closeSql: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ sql, close: closeSql } = await openServerSql('model'));
  await new SyncServer({ schema: e2eSchema, sql, authenticate: createAuthenticator({ secret: SECRET }) }).setup();
}, 120_000);

afterAll(async () => {
  await closeSql?.();
});

describe('model: devices, users, a faulty network and two server instances converge', () => {
  it('keeps every invariant at every step and converges at rest', { timeout: 20 * 60_000 }, async () => {
    console.log(`model test: ${numRuns} runs on ${sql.kind}, seed ${seed}${path ? `, path ${path}` : ''} (replay: DOVETAIL_MODEL_SEED=${seed})`);
    const started = performance.now();
    let runs = 0;
    const property = fc.asyncProperty(scenarioArb, async ({ world, commands }) => {
      runs++;
      await truncateAll(sql);
      await runModel(sql, world, commands);
    });
    const result = await fc.check(property, { numRuns, seed, ...(path ? { path, endOnFailure: true } : {}) });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`model test: ${runs} runs (shrinking included) in ${seconds} s on ${sql.kind}`);
    console.log(`model test coverage:\n${[...coverage].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${k}: ${n}`).join('\n')}`);
    if (result.failed) {
      const replay = `DOVETAIL_MODEL_SEED=${result.seed} DOVETAIL_MODEL_PATH="${result.counterexamplePath ?? ''}"`;
      const error = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
      console.log(`MODEL TEST FAILED: seed=${result.seed} path="${result.counterexamplePath ?? ''}" (replay: ${replay})`);
      console.log(`counterexample: ${JSON.stringify(result.counterexample)}`);
      console.log(`what broke:\n${error}`);
      throw new Error(`${fc.defaultReportMessage(result)}\nreplay: ${replay}\n${error}`);
    }
  });

  // Scenarios the model found (see scenarios.ts). Open ones fail until the engine is fixed.
  for (const found of FOUND_SCENARIOS) {
    it(`${found.status === 'open' ? 'open bug' : 'fixed'}: ${found.name}`, { timeout: 60_000 }, async () => {
      await truncateAll(sql);
      await runModel(sql, found.world, found.commands);
    });
  }
});
