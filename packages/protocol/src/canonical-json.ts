import type { Mutation } from './ops.js';

/** A JSON value, read-only at every level (so ops and rows fit as they are). */
type JsonInput = string | number | boolean | null | readonly JsonInput[] | { readonly [key: string]: JsonInput };

/**
 * JSON text with the keys of every object sorted (by UTF-16 code units), so
 * two values that are equal as JSON give the same text whatever order their
 * keys came in. Servers hash it to compare a replayed mutation with the
 * original: clients in other languages may not keep key order.
 *
 * @example
 * canonicalJson({ b: 1, a: [true, { d: null, c: 'x' }] }); // '{"a":[true,{"c":"x","d":null}],"b":1}'
 */
export function canonicalJson(value: JsonInput): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] ?? null)}`).join(',')}}`;
}

/**
 * The content of a mutation that a replay must repeat exactly: its name and
 * ops, as canonical JSON (the id is the key it is stored under; `prev` is not
 * content). Two sends of one mutation id are the same mutation exactly when
 * these strings are equal; otherwise the later one is a `conflict`.
 *
 * @example
 * const digest = createHash('sha256').update(mutationContent(m)).digest('hex');
 */
export function mutationContent(mutation: Mutation): string {
  return canonicalJson([mutation.name, mutation.ops]);
}

function isArray(value: JsonInput): value is readonly JsonInput[] {
  return Array.isArray(value);
}
