import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS, commandDocSection } from '../src/cli.js';

/** docs/cli.md shows each command's `--help` as it is (`npm run docs:cli` rewrites it): the page cannot drift from the options. */
describe('docs/cli.md', () => {
  const page = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
  for (const command of COMMANDS) {
    it(`shows the help of 'dovetail ${command.name}' as the command prints it`, () => {
      expect(page).toContain(commandDocSection(command));
    });
  }
});
