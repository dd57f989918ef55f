import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op } from '@dovetail/protocol';
import { decodeOps, encodeOps } from '../src/outbox/ops-codec.js';

/**
 * How ops are stored in the outbox: runs of inserts (or upserts) of one
 * shape are packed; whatever is stored reads back as the same ops, in the
 * same order, and entries written op by op (before packing) still read.
 */
const value = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.jsonValue());
const column = fc.constantFrom('id', 'title', 'rank', 'meta', 'project_id');
const row = fc.dictionary(column, value, { minKeys: 1, maxKeys: 5 });
const table = fc.constantFrom('tasks', 'projects');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('insert' as const), table, row }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('upsert' as const), table, row }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('update' as const), table, id: fc.string(), set: row }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), table, id: fc.string() }) },
) as fc.Arbitrary<Op>;
/** Runs of one shape, as a bulk insert makes them. */
const run: fc.Arbitrary<Op[]> = fc
  .tuple(fc.constantFrom('insert' as const, 'upsert' as const), table, fc.uniqueArray(column, { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 12 }))
  .chain(([kind, t, cols, n]) => fc.array(fc.tuple(...cols.map(() => value)), { minLength: n, maxLength: n }).map((rows) => rows.map((vals) => ({ op: kind, table: t, row: Object.fromEntries(cols.map((c, i) => [c, vals[i]])) }) as Op)));
const ops = fc.array(fc.oneof(op.map((o) => [o]), run), { maxLength: 12 }).map((parts) => parts.flat());

describe('the outbox encoding of ops', () => {
  it('reads back every mix of ops exactly as written', () => {
    fc.assert(
      fc.property(ops, (written) => {
        expect(decodeOps(encodeOps(written))).toEqual(JSON.parse(JSON.stringify(written)));
      }),
      { numRuns: 300 },
    );
  });

  it('packs a bulk insert to about half its size, columns named once', () => {
    const bulk: Op[] = Array.from({ length: 1000 }, (_, k) => ({ op: 'insert', table: 'tasks', row: { id: `t${k}`, project_id: 'p1', title: `task ${k}`, rank: k } }));
    const packed = encodeOps(bulk);
    expect(packed.length).toBeLessThan(JSON.stringify(bulk).length * 0.55);
    expect(packed.match(/"project_id"/g)).toHaveLength(1);
    expect(decodeOps(packed)).toEqual(bulk);
  });

  it('keeps short runs, and rows whose columns differ, op by op', () => {
    const few: Op[] = [
      { op: 'insert', table: 'tasks', row: { id: 'a', title: 'x' } },
      { op: 'insert', table: 'tasks', row: { title: 'y', id: 'b' } },
      { op: 'insert', table: 'tasks', row: { id: 'c', title: 'z' } },
    ];
    expect(encodeOps(few)).toBe(JSON.stringify(few));
  });

  it('reads an entry written op by op, as before packing existed', () => {
    const old = '[{"op":"insert","table":"tasks","row":{"id":"a"}},{"op":"delete","table":"tasks","id":"b"}]';
    expect(decodeOps(old)).toEqual(JSON.parse(old));
  });
});
