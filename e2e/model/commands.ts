import fc from 'fast-check';
import type { CrashPoint, FaultKind } from './faulty-transport.js';

/**
 * The commands of the model test, as plain data so that fast-check prints
 * and shrinks them readably. Devices and users are indexes taken modulo the
 * world's size; row ids come from small pools so that devices (and users)
 * collide on ids.
 */

export const USERS = ['ann', 'bob', 'cat', 'dan'] as const;
export const PROJECT_IDS = ['p1', 'p2', 'p3'] as const;
export const TASK_IDS = ['t1', 't2', 't3', 't4'] as const;
export const COMMENT_IDS = ['k1', 'k2', 'k3'] as const;

/** The server's limit on ops per mutation in the model: above every write but `bulk`. */
export const MAX_OPS = 6;

export type WriteSpec =
  | { readonly k: 'project'; readonly op: 'insert' | 'upsert'; readonly p: number }
  /** `parent` -1: no parent task. */
  | { readonly k: 'task'; readonly op: 'insert' | 'upsert'; readonly t: number; readonly p: number; readonly parent: number }
  | { readonly k: 'comment'; readonly op: 'insert' | 'upsert'; readonly c: number; readonly t: number }
  /** A chain of `depth` new tasks under an existing task (`t`), each the parent of the next, in one mutation. */
  | { readonly k: 'subtasks'; readonly t: number; readonly depth: number; readonly childFirst: boolean }
  /** A project, a task in it and a comment on the task in one mutation; `childFirst` lists the ops children first. */
  | { readonly k: 'tree'; readonly p: number; readonly t: number; readonly c: number; readonly childFirst: boolean }
  | { readonly k: 'rename'; readonly table: 'projects' | 'tasks' | 'comments'; readonly id: number }
  /** Sets a task's parent (-1: none) and, unless `p` is -1, moves it to another project. */
  | { readonly k: 'move'; readonly t: number; readonly parent: number; readonly p: number }
  | { readonly k: 'delete'; readonly table: 'projects' | 'tasks' | 'comments'; readonly id: number }
  /** The user deletes their own identity row: restricted by their projects, cascades to their comments. */
  | { readonly k: 'deleteSelf' }
  /** A project owned by another user: the server refuses it (`forbidden`). */
  | { readonly k: 'foreign'; readonly p: number; readonly u: number }
  /** A new project with more tasks than the server takes in one mutation: refused (`too_large`), and what depends on it with it. */
  | { readonly k: 'bulk'; readonly p: number };

export type Command =
  /** A local write; with `sync`, the device syncs right after (as the engine does shortly after a write). */
  | { readonly c: 'write'; readonly d: number; readonly w: WriteSpec; readonly sync: boolean }
  | { readonly c: 'sync'; readonly d: number }
  /** Every device syncs, one after the other, in device order (`up`) or the reverse. */
  | { readonly c: 'syncAll'; readonly order: 'up' | 'down' }
  | { readonly c: 'net'; readonly d: number; readonly online: boolean }
  | { readonly c: 'fault'; readonly d: number; readonly kind: FaultKind; readonly count: number }
  /** Held and late requests (of one device, or all) reach the server, oldest or newest first. */
  | { readonly c: 'release'; readonly d: number | 'all'; readonly order: 'fifo' | 'lifo' }
  /** The app is closed abruptly during a sync (`idle`: between syncs): signed out without waiting, or killed; then reopened. */
  | { readonly c: 'crash'; readonly d: number; readonly at: CrashPoint | 'idle'; readonly how: 'signout' | 'kill' }
  /** Server instance `i` (of two; 0 when absent) restarts. */
  | { readonly c: 'restart'; readonly i?: 0 | 1 }
  /** The server drops its change log (tombstone retention 0): older cursors get `cursor_expired` and resync. */
  | { readonly c: 'prune' }
  /** Sign out and sign in as user `u` (possibly the same) on the same device. */
  | { readonly c: 'switch'; readonly d: number; readonly u: number };

/** How many devices each user starts with (2-4 users, 1-3 devices each). */
export type WorldSpec = readonly number[];

export const MAX_COMMANDS = 25;

/** Mostly the first few devices (so that they build on their own rows), sometimes any. */
const device = fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.nat({ max: 11 }) });
const pid = fc.nat({ max: PROJECT_IDS.length - 1 });
const tid = fc.nat({ max: TASK_IDS.length - 1 });
const cid = fc.nat({ max: COMMENT_IDS.length - 1 });
const table = fc.constantFrom('projects' as const, 'tasks' as const, 'comments' as const);
const idIn = (t: 'projects' | 'tasks' | 'comments'): number => (t === 'projects' ? PROJECT_IDS.length : t === 'tasks' ? TASK_IDS.length : COMMENT_IDS.length);

type WriteKind = WriteSpec['k'];
type OtherKind = Exclude<Command['c'], 'write'>;

const WRITES: readonly { kind: WriteKind; weight: number; arbitrary: fc.Arbitrary<WriteSpec> }[] = [
  { kind: 'project', weight: 5, arbitrary: fc.record({ k: fc.constant('project' as const), op: fc.constantFrom('insert' as const, 'upsert' as const), p: pid }) },
  { kind: 'task', weight: 5, arbitrary: fc.record({ k: fc.constant('task' as const), op: fc.constantFrom('insert' as const, 'upsert' as const), t: tid, p: pid, parent: fc.integer({ min: -1, max: TASK_IDS.length - 1 }) }) },
  { kind: 'comment', weight: 3, arbitrary: fc.record({ k: fc.constant('comment' as const), op: fc.constantFrom('insert' as const, 'upsert' as const), c: cid, t: tid }) },
  { kind: 'subtasks', weight: 4, arbitrary: fc.record({ k: fc.constant('subtasks' as const), t: tid, depth: fc.integer({ min: 1, max: 3 }), childFirst: fc.boolean() }) },
  { kind: 'tree', weight: 6, arbitrary: fc.record({ k: fc.constant('tree' as const), p: pid, t: tid, c: cid, childFirst: fc.boolean() }) },
  { kind: 'rename', weight: 2, arbitrary: table.chain((t) => fc.record({ k: fc.constant('rename' as const), table: fc.constant(t), id: fc.nat({ max: idIn(t) - 1 }) })) },
  { kind: 'move', weight: 3, arbitrary: fc.record({ k: fc.constant('move' as const), t: tid, parent: fc.integer({ min: -1, max: TASK_IDS.length - 1 }), p: fc.integer({ min: -1, max: PROJECT_IDS.length - 1 }) }) },
  { kind: 'delete', weight: 3, arbitrary: table.chain((t) => fc.record({ k: fc.constant('delete' as const), table: fc.constant(t), id: fc.nat({ max: idIn(t) - 1 }) })) },
  { kind: 'deleteSelf', weight: 1, arbitrary: fc.constant({ k: 'deleteSelf' as const }) },
  { kind: 'foreign', weight: 1, arbitrary: fc.record({ k: fc.constant('foreign' as const), p: pid, u: fc.nat({ max: USERS.length - 1 }) }) },
  { kind: 'bulk', weight: 1, arbitrary: fc.record({ k: fc.constant('bulk' as const), p: pid }) },
];

const OTHERS: readonly { kind: OtherKind; weight: number; arbitrary: fc.Arbitrary<Command> }[] = [
  { kind: 'sync', weight: 8, arbitrary: fc.record({ c: fc.constant('sync' as const), d: device }) },
  { kind: 'syncAll', weight: 3, arbitrary: fc.record({ c: fc.constant('syncAll' as const), order: fc.constantFrom('up' as const, 'down' as const) }) },
  { kind: 'net', weight: 2, arbitrary: fc.record({ c: fc.constant('net' as const), d: device, online: fc.boolean() }) },
  {
    kind: 'fault',
    weight: 4,
    arbitrary: fc.record({
      c: fc.constant('fault' as const),
      d: device,
      kind: fc.constantFrom<FaultKind>('drop-before', 'drop-after', 'duplicate', 'late', 'hold', 'expired'),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { kind: 'release', weight: 2, arbitrary: fc.record({ c: fc.constant('release' as const), d: fc.oneof(device, fc.constant('all' as const)), order: fc.constantFrom('fifo' as const, 'lifo' as const) }) },
  {
    kind: 'crash',
    weight: 3,
    arbitrary: fc.record({
      c: fc.constant('crash' as const),
      d: device,
      at: fc.constantFrom<CrashPoint | 'idle'>('push-before', 'push-after', 'pull-before', 'pull-after', 'idle'),
      how: fc.constantFrom('signout' as const, 'kill' as const),
    }),
  },
  { kind: 'restart', weight: 1, arbitrary: fc.constantFrom(0 as const, 1 as const).map((i) => ({ c: 'restart' as const, i })) },
  { kind: 'prune', weight: 1, arbitrary: fc.constant({ c: 'prune' as const }) },
  { kind: 'switch', weight: 2, arbitrary: fc.record({ c: fc.constant('switch' as const), d: device, u: fc.nat({ max: USERS.length - 1 }) }) },
];

/**
 * Which kinds of writes and commands a run uses (swarm testing): a run
 * that uses only a few kinds goes deeper into how they interact than one
 * that spreads the same number of commands over all of them. One run in
 * three uses every kind.
 */
export interface Swarm {
  readonly writes: readonly WriteKind[];
  readonly others: readonly OtherKind[];
}

export const swarmArb: fc.Arbitrary<Swarm> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ writes: WRITES.map((w) => w.kind), others: OTHERS.map((o) => o.kind) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      writes: fc.subarray(WRITES.map((w) => w.kind), { minLength: 1 }),
      others: fc.subarray(OTHERS.map((o) => o.kind)),
    }),
  },
);

export function commandsFor(swarm: Swarm): fc.Arbitrary<Command[]> {
  const writes = WRITES.filter((w) => swarm.writes.includes(w.kind));
  const others = OTHERS.filter((o) => swarm.others.includes(o.kind));
  const write = fc.oneof(...writes.map(({ weight, arbitrary }) => ({ weight, arbitrary })));
  const command = fc.oneof(
    { weight: 16, arbitrary: fc.record({ c: fc.constant('write' as const), d: device, w: write, sync: fc.boolean() }) },
    ...others.map(({ weight, arbitrary }) => ({ weight, arbitrary })),
  );
  return fc.array(command, { minLength: 1, maxLength: MAX_COMMANDS, size: 'max' });
}

export const worldArb: fc.Arbitrary<WorldSpec> = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 2, maxLength: 4 });

/** One run: the world, the kinds it uses, and its commands. The world stays out of the chain, so that it shrinks too. */
export const scenarioArb: fc.Arbitrary<{ world: WorldSpec; swarm: Swarm; commands: Command[] }> = fc
  .tuple(worldArb, swarmArb.chain((swarm) => commandsFor(swarm).map((commands) => ({ swarm, commands }))))
  .map(([world, { swarm, commands }]) => ({ world, swarm, commands }));

/** A command as one short line, for the trace. */
export function describeCommand(cmd: Command): string {
  const { c, ...rest } = cmd;
  return `${c} ${JSON.stringify(rest)}`;
}
