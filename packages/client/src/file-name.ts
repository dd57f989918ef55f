import { DovetailError } from './errors.js';
import { sha256Hex } from './sha256.js';

const READABLE = /[^a-z0-9_-]/g;

/**
 * The database file name of a user: `dovetail-<readable part>-<hash>.db`.
 *
 * Any user id is safe: the readable part keeps only `[a-z0-9_-]` (so no
 * path separators, no `..`, nothing a case-insensitive file system could
 * merge), and the hash of the exact id keeps distinct ids apart. The length
 * stays far below file-system limits whatever the id's length.
 *
 * @example
 * databaseFileName('auth0|Ann')  // 'dovetail-auth0_ann-<24 hex>.db'
 */
export function databaseFileName(userId: string): string {
  checkUserId(userId);
  const readable = userId.toLowerCase().replace(READABLE, '_').slice(0, 40);
  return `dovetail-${readable}-${sha256Hex(userId).slice(0, 24)}.db`;
}

export function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 1024) {
    throw new DovetailError('invalid_user_id', `user id must be a non-empty string of at most 1024 characters, got ${typeof userId === 'string' ? `a string of length ${userId.length}` : typeof userId}`);
  }
}
