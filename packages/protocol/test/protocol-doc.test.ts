import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  RejectReason,
  RequestErrorStatus,
  SUPPORTED_PROTOCOL_VERSIONS,
  parseClientMessage,
  parseErrorBody,
  parsePullRequest,
  parsePullResponse,
  parsePushRequest,
  parsePushResponse,
  parseServerMessage,
} from '@dovetail/protocol';

// The protocol document is the contract for clients in other languages:
// its examples must parse, and it must document every code.
const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');

const parsers: Record<string, (body: unknown) => unknown> = {
  parsePushRequest,
  parsePushResponse,
  parsePullRequest,
  parsePullResponse,
  parseClientMessage,
  parseServerMessage,
  parseErrorBody,
};

describe('docs/protocol.md', () => {
  const examples = [...doc.matchAll(/<!-- example: (\w+) -->\n```json\n([\s\S]*?)\n```/g)].map((m) => ({ parser: m[1] ?? '', json: m[2] ?? '' }));

  it('has an example of every message', () => {
    expect(new Set(examples.map((e) => e.parser))).toEqual(new Set(Object.keys(parsers)));
  });

  it.each(examples.map((e, i) => [i, e.parser, e.json] as const))('example %i parses with %s', (_i, parser, json) => {
    const parse = parsers[parser];
    if (!parse) throw new Error(`no parser ${parser}`);
    const value = JSON.parse(json) as unknown;
    expect(parse(value)).toStrictEqual(value);
  });

  it('gives every request-level code its HTTP status', () => {
    for (const [code, status] of Object.entries(RequestErrorStatus)) {
      expect(doc, code).toMatch(new RegExp(`^\\| \`${code}\` \\| ${status} \\|`, 'm'));
    }
  });

  it('documents every reject reason, as a reason and as an error code', () => {
    for (const reason of Object.values(RejectReason)) {
      expect(doc.split(`\n| \`${reason}\` | `).length - 1, reason).toBeGreaterThanOrEqual(2);
    }
  });

  it('lists every protocol version in its history', () => {
    const history = doc.slice(doc.indexOf('## Version history'));
    for (const version of SUPPORTED_PROTOCOL_VERSIONS) expect(history).toMatch(new RegExp(`^\\| ${version} \\| `, 'm'));
    expect(doc).toContain(`Current protocol version: **${PROTOCOL_VERSION}**.`);
  });
});
