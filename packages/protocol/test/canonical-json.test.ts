import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, mutationContent } from '@dovetail/protocol';
import type { JsonValue, Mutation } from '@dovetail/protocol';

/** The same value with the keys of every object in reverse order. */
function reversedKeys(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(reversedKeys);
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversedKeys(v)]));
}

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: [true, { d: null, c: 'x' }] })).toBe('{"a":[true,{"c":"x","d":null}],"b":1}');
    expect(canonicalJson([2, 1])).toBe('[2,1]');
  });

  it('is valid JSON for the same value, whatever the key order', () => {
    fc.assert(
      fc.property(fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as JsonValue), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(reversedKeys(value))).toBe(text);
        expect(JSON.parse(text)).toEqual(value);
      }),
    );
  });
});

describe('mutationContent', () => {
  const m: Mutation = { id: 'm1', name: 'createPost', ops: [{ op: 'insert', table: 'posts', row: { id: 'p1', body: 'hi' } }] };

  it('ignores the id and the key order, and sees every change of name or ops', () => {
    const reordered: Mutation = { ops: [{ row: { body: 'hi', id: 'p1' }, table: 'posts', op: 'insert' }], name: 'createPost', id: 'other' };
    expect(mutationContent(reordered)).toBe(mutationContent(m));
    expect(mutationContent({ ...m, name: 'createDraft' })).not.toBe(mutationContent(m));
    expect(mutationContent({ ...m, ops: [{ op: 'upsert', table: 'posts', row: { id: 'p1', body: 'hi' } }] })).not.toBe(mutationContent(m));
  });
});
