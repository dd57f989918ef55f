import { expect, it } from 'vitest';
import { systemTimers } from '@dovetail/client';

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

it('a delay of 0 runs on the next turn of the event loop, before a timer of 1 ms set earlier', async () => {
  // Node waits at least 1 ms for setTimeout(fn, 0): a sync after a write or a poke would start that much later.
  const order: string[] = [];
  setTimeout(() => order.push('1 ms timer'), 1);
  systemTimers.setTimeout(() => order.push('delay 0'), 0);
  systemTimers.setTimeout(() => order.push('5 ms'), 5);
  await settle(30);
  expect(order).toEqual(['delay 0', '1 ms timer', '5 ms']);
});

it('clears what it set, whatever the delay', async () => {
  const fired: number[] = [];
  for (const ms of [0, 3]) systemTimers.clearTimeout(systemTimers.setTimeout(() => fired.push(ms), ms));
  systemTimers.clearTimeout(undefined);
  await settle(30);
  expect(fired).toEqual([]);
});
