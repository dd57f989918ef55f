import type { Command, WorldSpec } from './commands.js';

/**
 * Scenarios the model test found, in its own command language, replayed
 * as they are on every run of the test file (devices are indexes into the
 * world: `[2, 1]` is d0 = ann, d1 = ann, d2 = bob).
 *
 * `open`: the engine still breaks an invariant here; the test stays red
 * until it is fixed (the invariants are not relaxed for it).
 * `fixed`: it broke once; kept so that it stays fixed.
 */
export interface FoundScenario {
  readonly name: string;
  readonly status: 'open' | 'fixed';
  readonly world: WorldSpec;
  readonly commands: readonly Command[];
}

export const FOUND_SCENARIOS: readonly FoundScenario[] = [
  /**
   * FIXED (a pull now sends a delete when any version of the row since the
   * cursor was visible to the user). Invariant 4 (and G8 on the device): a
   * deleted row stayed on a device for good when another user reused its id.
   *
   * Ann's d1 holds task t1 and comment k1; ann deletes t1 from d0 (the
   * comment goes with it). Bob then creates his own task t1 (the id is free
   * again) and renames it. When d1 pulls, the server looks at the changes of
   * tasks:t1 since d1's cursor, finds the row not visible to ann, and sends
   * a delete only if `deletedRowCondition` holds for the *latest* old row
   * (`since()` in packages/server/src/pull.ts: `ORDER BY c.seq DESC LIMIT 1`),
   * which is bob's version (project p2, not ann's): no delete is sent. The
   * same for k1, whose task t1 now exists but is not visible to ann. d1
   * keeps t1 and k1 forever; nothing later removes them.
   *
   * Found by the random model (seed 51, swarm of project/task/comment/delete
   * writes); this is the hand-shrunk form.
   */
  {
    name: 'a deleted row stays on a device when another user reuses its id',
    status: 'fixed',
    world: [2, 1],
    commands: [
      { c: 'write', d: 0, w: { k: 'tree', p: 0, t: 0, c: 0, childFirst: false }, sync: true },
      { c: 'sync', d: 1 },
      { c: 'write', d: 0, w: { k: 'delete', table: 'tasks', id: 0 }, sync: true },
      { c: 'write', d: 2, w: { k: 'task', op: 'insert', t: 0, p: 1, parent: -1 }, sync: true },
      { c: 'write', d: 2, w: { k: 'rename', table: 'tasks', id: 0 }, sync: true },
      { c: 'sync', d: 1 },
    ],
  },
  /**
   * FIXED (a pull is not applied, and is made again, when the outbox gained
   * rows it did not refresh). G6 (pulled changes apply with pending
   * mutations replayed on top): a write made while a pull was on its way
   * made that pull fail with a ForeignKeyViolation.
   *
   * Bob's d1 starts a sync; its pull is held in the network. Meanwhile bob
   * writes a project owned by ann (refused later as `forbidden`, but
   * committed locally). Ann deletes her own user row (her push arrives
   * late, with no pull after it, so nothing recreates the row). When bob's
   * pull arrives it carries the delete of users 'ann'. The runner computed
   * the refresh keys from the outbox before sending the pull
   * (`refreshKeys()` in packages/client/src/sync/runner.ts), so the new
   * pending project is neither refreshed nor taken out before
   * `SyncStore.applyPull` applies the delete under it: the key check at
   * COMMIT fails, the whole pull rolls back, `syncNow()` rejects with a
   * ForeignKeyViolation and the next sync has to start over with a full
   * resync. Any pulled delete that a pending row written during the pull
   * restricts does the same.
   *
   * Found with the model's commands while reading `sync-store.ts`.
   */
  {
    name: 'a write made while a pull is on its way makes the pull fail with a key violation',
    status: 'fixed',
    world: [1, 1],
    commands: [
      { c: 'syncAll', order: 'up' },
      { c: 'fault', d: 1, kind: 'hold', count: 1 },
      { c: 'sync', d: 1 },
      { c: 'write', d: 1, w: { k: 'foreign', p: 0, u: 0 }, sync: false },
      { c: 'write', d: 0, w: { k: 'deleteSelf' }, sync: false },
      { c: 'fault', d: 0, kind: 'late', count: 1 },
      { c: 'sync', d: 0 },
      { c: 'release', d: 0, order: 'fifo' },
      { c: 'release', d: 1, order: 'fifo' },
    ],
  },
  /**
   * FIXED (server commit "a row may only point at parents its writer may
   * see"). G6 and invariant 8: the server sent a set that was not
   * key-closed, and the device could never apply a pull again.
   *
   * Bob's own task t1 collided with ann's t1 (refused), but his t2 with
   * parent t1 was applied, pointing at ann's task; then t3 under t2. The
   * visibility rule checks a self-reference one level deep, so t3 (its
   * parent t2 is in bob's project) was visible to bob while t2 (its parent
   * is ann's) was not: every pull sent t3 without t2, the device's COMMIT
   * failed, and the resync failed the same way, forever.
   */
  {
    name: 'a pull never sends a task without its parent task',
    status: 'fixed',
    world: [1, 1],
    commands: [
      { c: 'write', d: 0, w: { k: 'tree', p: 0, t: 0, c: 0, childFirst: false }, sync: true },
      { c: 'write', d: 1, w: { k: 'project', op: 'insert', p: 1 }, sync: false },
      { c: 'write', d: 1, w: { k: 'task', op: 'insert', t: 0, p: 0, parent: -1 }, sync: false },
      { c: 'write', d: 1, w: { k: 'task', op: 'insert', t: 0, p: 0, parent: 0 }, sync: false },
      { c: 'write', d: 1, w: { k: 'task', op: 'insert', t: 0, p: 0, parent: 1 }, sync: true },
    ],
  },
];
