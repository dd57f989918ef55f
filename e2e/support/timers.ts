import type { Timers } from '@dovetail/client';

/** Timers that never fire by themselves: tests call `syncNow()`. */
export const manualTimers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined };
