import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeOutbox } from '@dovetail/client';
import type { OutboxEntry } from '@dovetail/client';
import type { Op } from '@dovetail/protocol';
import { scenarioSchema } from './fixtures.js';
import { SqliteModel } from './support/sqlite-model.js';

const model = scenarioSchema.model;
let seq = 0;
const entry = (ops: Op[], sent = false): OutboxEntry => ({ seq: ++seq, id: `m${seq}`, name: 'test', ops, sent, mergedFrom: [] });

const P = (id: string, title = 'P'): Op => ({ op: 'insert', table: 'projects', row: { id, owner_id: 'ann', title } });
const T = (id: string, project_id: string, parent_task_id: string | null = null): Op => ({ op: 'insert', table: 'tasks', row: { id, project_id, parent_task_id, title: id } });
const C = (id: string, task_id: string): Op => ({ op: 'insert', table: 'comments', row: { id, task_id, author_id: 'ann', body: 'x' } });
const upd = (table: string, id: string, set: Record<string, string | number | boolean | null>): Op => ({ op: 'update', table, id, set });
const del = (table: string, id: string): Op => ({ op: 'delete', table, id });

describe('outbox normalization (examples)', () => {
  it('drops a like followed by an unlike', () => {
    const r = normalizeOutbox([entry([P('p1')]), entry([C('c1', 't0')]), entry([del('comments', 'c1')])], model);
    expect(r.entries.map((e) => e.ops)).toEqual([[P('p1')]]);
    expect(r.removed.map((x) => x.into)).toEqual([undefined, undefined]);
  });

  it('folds successive edits into the insert, and the emptied entries say where they went', () => {
    const a = entry([P('p1', 'a')]);
    const b = entry([upd('projects', 'p1', { title: 'b' })]);
    const c = entry([upd('projects', 'p1', { title: 'c' })]);
    const r = normalizeOutbox([a, b, c], model);
    expect(r.entries).toHaveLength(1);
    expect(r.entries[0]?.ops).toEqual([P('p1', 'c')]);
    expect(r.entries[0]?.mergedFrom).toEqual([b.id, c.id]);
    expect(r.removed).toEqual([
      { id: b.id, into: a.id },
      { id: c.id, into: a.id },
    ]);
  });

  it('keeps an insert and its delete when a child was written in between', () => {
    const input = [entry([P('p1')]), entry([T('t1', 'p1')]), entry([del('projects', 'p1')])];
    const r = normalizeOutbox(input, model);
    expect(r.entries.map((e) => e.ops)).toEqual(input.map((e) => e.ops));
    expect(r.changed).toBe(false);
  });

  it('does not move an update past a write to a table it points at', () => {
    const input = [entry([P('p1'), P('p2'), T('t1', 'p1')]), entry([upd('tasks', 't1', { project_id: 'p2' })]), entry([del('projects', 'p1')]), entry([upd('tasks', 't1', { title: 'z' })])];
    const r = normalizeOutbox(input, model);
    // The first update does not fold into the insert, whose mutation also
    // writes projects; the last cannot cross the delete of a project.
    expect(r.entries.map((e) => e.ops)).toEqual(input.map((e) => e.ops));
    // Without the projects in the way, successive edits do fold.
    const free = normalizeOutbox([entry([T('t1', 'p1')]), entry([upd('tasks', 't1', { project_id: 'p2' })])], model);
    expect(free.entries.map((e) => e.ops)).toEqual([[T('t1', 'p2')]]);
  });

  it('does not cancel an insert whose children were written earlier in the same mutation', () => {
    const input = [entry([T('t1', 'p1'), P('p1')]), entry([del('projects', 'p1')])];
    const r = normalizeOutbox(input, model);
    expect(r.entries.map((e) => e.ops)).toEqual([[P('p1'), T('t1', 'p1')], [del('projects', 'p1')]]);
  });

  it('never changes an entry that was already sent', () => {
    const sent = entry([P('p1', 'a')], true);
    const r = normalizeOutbox([sent, entry([upd('projects', 'p1', { title: 'b' })])], model);
    expect(r.entries[0]).toBe(sent);
    expect(r.entries[1]?.ops).toEqual([upd('projects', 'p1', { title: 'b' })]);
  });

  it('puts parents first inside a mutation, and deletes children first', () => {
    const r = normalizeOutbox([entry([C('c1', 't2'), T('t2', 'p1', 't1'), T('t1', 'p1'), P('p1')]), entry([del('projects', 'p1'), del('comments', 'c1')])], model);
    expect(r.entries[0]?.ops).toEqual([P('p1'), T('t1', 'p1'), T('t2', 'p1', 't1'), C('c1', 't2')]);
    expect(r.entries[1]?.ops).toEqual([del('comments', 'c1'), del('projects', 'p1')]);
  });
});

// ---- property: same effect as the raw outbox, parents never after children ----

const projects = ['p1', 'p2'];
const tasks = ['t1', 't2', 't3'];
const comments = ['c1', 'c2'];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ id: fc.constantFrom(...projects), title: fc.constantFrom('a', 'b') }).map(({ id, title }) => P(id, title)),
  fc.record({ id: fc.constantFrom(...tasks), p: fc.constantFrom(...projects), parent: fc.constantFrom(null, ...tasks) }).map(({ id, p, parent }) => T(id, p, parent)),
  fc.record({ id: fc.constantFrom(...comments), t: fc.constantFrom(...tasks) }).map(({ id, t }) => C(id, t)),
  fc.record({ id: fc.constantFrom(...projects), title: fc.constantFrom('x', 'y', 'z') }).map(({ id, title }) => upd('projects', id, { title })),
  fc.record({ id: fc.constantFrom(...tasks), set: fc.oneof(fc.record({ title: fc.constantFrom('u', 'v') }), fc.record({ done: fc.boolean() }), fc.record({ project_id: fc.constantFrom(...projects) }), fc.record({ parent_task_id: fc.constantFrom(null, ...tasks) })) }).map(({ id, set }) => upd('tasks', id, set)),
  fc.record({ id: fc.constantFrom(...comments), body: fc.constantFrom('k', 'l') }).map(({ id, body }) => upd('comments', id, { body })),
  fc.record({ id: fc.constantFrom(...tasks), p: fc.constantFrom(...projects), title: fc.constantFrom('s', 'w') }).map(({ id, p, title }): Op => ({ op: 'upsert', table: 'tasks', row: { id, project_id: p, title } })),
  fc.constantFrom(...projects).map((id) => del('projects', id)),
  fc.constantFrom(...tasks).map((id) => del('tasks', id)),
  fc.constantFrom(...comments).map((id) => del('comments', id)),
);

/** Mutations the device accepted: each applied to a device model, failures dropped (as mutate() would throw). */
function acceptedOutbox(mutations: Op[][], sentCount: number): OutboxEntry[] {
  const device = new SqliteModel(scenarioSchema);
  device.apply([{ op: 'insert', table: 'users', row: { id: 'ann', name: 'Ann' } }]);
  const accepted = mutations.filter((ops) => device.apply(ops));
  device.close();
  return accepted.map((ops, i) => ({ seq: i + 1, id: `m${i + 1}`, name: 'm', ops, sent: i < sentCount, mergedFrom: [] }));
}

function runOn(entries: readonly OutboxEntry[]): { ok: boolean; rows: Record<string, unknown[]> } {
  const server = new SqliteModel(scenarioSchema);
  server.apply([{ op: 'insert', table: 'users', row: { id: 'ann', name: 'Ann' } }]);
  const ok = entries.every((e) => server.apply(e.ops));
  const rows = server.dump();
  server.close();
  return { ok, rows };
}

function descendantsOf(table: string): Set<string> {
  const out = new Set<string>();
  const visit = (t: string): void => {
    for (const fk of scenarioSchema.childrenOf(t)) {
      if (out.has(fk.table)) continue;
      out.add(fk.table);
      visit(fk.table);
    }
  };
  visit(table);
  return out;
}

/** Whether the row written by ops[at] leads, through keys written in `ops`, to row `table` `id` (a cycle of rows). */
function pointsAt(ops: readonly Op[], at: number, table: string, id: string, seen = new Set<number>()): boolean {
  const op = ops[at];
  if (!op || op.op === 'delete' || seen.has(at)) return false;
  seen.add(at);
  const values = op.op === 'update' ? op.set : op.row;
  return scenarioSchema.table(op.table).foreignKeys.some((fk) => {
    const v = values[fk.column];
    if (typeof v !== 'string') return false;
    if (fk.refTable === table && v === id) return true;
    const next = ops.findIndex((p) => p.op !== 'delete' && p.table === fk.refTable && pkOf(p) === v);
    return next >= 0 && pointsAt(ops, next, table, id, seen);
  });
}

const pkOf = (op: Op): string => (op.op === 'insert' || op.op === 'upsert' ? (op.row.id as string) : op.id);

describe('outbox normalization (property)', () => {
  it('gives the same rows as the raw outbox and never puts a child before its parent', () => {
    fc.assert(
      fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 14 }), fc.nat(4), (mutations, sentCount) => {
        const raw = acceptedOutbox(mutations, sentCount);
        const result = normalizeOutbox(raw, model);

        // Sent entries are untouched and stay first.
        const sent = raw.filter((e) => e.sent);
        expect(result.entries.slice(0, sent.length)).toEqual(sent);
        // Every entry is either kept (in order) or removed.
        const kept = result.entries.map((e) => e.id);
        expect([...kept, ...result.removed.map((r) => r.id)].sort()).toEqual(raw.map((e) => e.id).sort());
        expect(kept).toEqual(raw.map((e) => e.id).filter((id) => kept.includes(id)));
        expect(result.entries.every((e) => e.ops.length > 0)).toBe(true);

        // Same effect on a model of the server.
        const before = runOn(raw);
        const after = runOn(result.entries);
        expect(before.ok).toBe(true);
        expect(after.ok).toBe(true);
        expect(after.rows).toEqual(before.rows);

        // Within each mutation, a row is written before any row pointing at
        // it, unless a delete between them could reach the parent's table
        // (then their order is what the app asked for, and must stay).
        const reaches = (d: Op, table: string): boolean => d.table === table || descendantsOf(d.table).has(table);
        for (const e of result.entries.filter((x) => !x.sent)) {
          e.ops.forEach((op, i) => {
            if (op.op === 'delete') return;
            const values = op.op === 'update' ? op.set : op.row;
            for (const fk of scenarioSchema.table(op.table).foreignKeys) {
              const v = values[fk.column];
              if (typeof v !== 'string' || (fk.refTable === op.table && pkOf(op) === v)) continue;
              const parentAt = e.ops.findIndex((p) => (p.op === 'insert' || p.op === 'upsert') && p.table === fk.refTable && pkOf(p) === v);
              if (parentAt > i) {
                const excused = e.ops.slice(i + 1, parentAt).some((d) => d.op === 'delete' && reaches(d, fk.refTable)) || pointsAt(e.ops, parentAt, op.table, pkOf(op));
                expect(excused, `${op.table} ${pkOf(op)} comes before its parent ${fk.refTable} ${v}`).toBe(true);
              }
            }
          });
        }
        // Normalizing twice changes nothing more.
        expect(normalizeOutbox(result.entries, model).entries.map((e) => e.ops)).toEqual(result.entries.map((e) => e.ops));
      }),
      { numRuns: 300 },
    );
  });
});
