/**
 * Rewrites the command sections of docs/cli.md from the commands' own
 * `--help` (`npm run docs:cli`); the tests check the page is current.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { COMMANDS, commandDocSection } from '../packages/cli/src/cli.js';

const MARK = '<!-- The sections below are written by `npm run docs:cli`. -->';
const file = new URL('../docs/cli.md', import.meta.url);
const page = readFileSync(file, 'utf8');
const head = page.includes(MARK) ? page.slice(0, page.indexOf(MARK)) : page.slice(0, page.indexOf('## dovetail '));
const sections = COMMANDS.map(commandDocSection).join('\n');
writeFileSync(file, `${head.trimEnd()}\n\n${MARK}\n\n${sections}`);
