import { expect, it } from 'vitest';
import { demo } from './demo.js';

it('tells the demo story as the README promises', async () => {
  const lines: string[] = [];
  await demo((line) => lines.push(line));
  const text = lines.join('\n');
  expect(text).toContain("Ann's laptop now shows projects: Fix the bike, Home; tasks: Buy milk, Oat milk, if they have it.");
  expect(text).toMatch(/The server refuses it: forbidden/);
  expect(text).toContain('shows "Home" again');
  expect(text).toMatch(/his comment is refused: parent_deleted/);
  expect(text).toContain("Bob's phone now shows tasks: Oat milk, if they have it; comments: (none).");
  expect(text).toContain("She sees projects: Fix the bike, Home. Bob's draft is not there");
  expect(text).toContain("The server has: Bob's draft, Fix the bike, Home.");
}, 120_000);
