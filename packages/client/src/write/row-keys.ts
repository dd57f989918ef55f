import type { RowValues } from '@dovetail/protocol';

/**
 * Whether `row` has exactly `names` as keys, in that order, none of them
 * undefined: the test that lets a row reuse the statement (and column
 * checks) of the row before it, as in a bulk insert or a pulled table,
 * without building its key list.
 */
export function hasKeysInOrder(row: RowValues, names: readonly string[]): boolean {
  let i = 0;
  for (const key in row) {
    if (names[i] !== key || row[key] === undefined) return false;
    i++;
  }
  return i === names.length;
}
