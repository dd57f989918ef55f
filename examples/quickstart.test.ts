import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { quickstart } from './quickstart.js';

it('runs the README quickstart as written', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'dovetail-quickstart-'));
  const lines: string[] = [];
  try {
    await quickstart(directory, (line) => lines.push(line));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  expect(lines).toEqual([
    'bound as u_ann; foreign_keys = 1',
    'posts: p1 "Hello, offline world", p2 "Replying to myself"',
    'outbox: createPost, reply (waiting for sync)',
    "refused: posts.author_id = 'u_42' has no users.id",
    'still 2 posts and 2 pending mutations; nothing half-written',
    'signed out',
  ]);
});
