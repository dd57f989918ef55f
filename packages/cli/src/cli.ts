import { readFileSync } from 'node:fs';
import type { Command } from './command.js';
import { benchCommand } from './commands/bench.js';
import { devCommand } from './commands/dev.js';
import { doctorCommand } from './commands/doctor.js';
import { migrateCommand } from './commands/migrate.js';
import { serveCommand } from './commands/serve.js';
import { CliError } from './errors.js';
import type { CliIo } from './io.js';
import { optionsHelp, parseOptions } from './options.js';
import { closest } from './suggest.js';

export type { CliIo } from './io.js';

/** Every command, in the order `dovetail --help` lists them. */
export const COMMANDS: readonly Command[] = [serveCommand, devCommand, migrateCommand, doctorCommand, benchCommand];

/** Exit codes: 0 fine, 1 the command ran and found problems, 2 it could not run. */
export const ExitCode = { Ok: 0, Problems: 1, CouldNotRun: 2 } as const;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `dovetail ${version()}: offline-first sync with foreign keys on

usage: dovetail <command> [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

'dovetail <command> --help' shows a command's options. Every option can also be set
through the environment variable named in its help.
Exit codes: 0 fine, 1 problems found, 2 could not run.
`;
}

export function commandHelp(command: Command): string {
  return `dovetail ${command.name}: ${command.summary}

usage: dovetail ${command.usage}

options:
${optionsHelp(command.options)}
${command.details ? `\n${command.details}\n` : ''}`;
}

/** A command's section of docs/cli.md: its help as printed (written by `npm run docs:cli`, checked by the tests). */
export function commandDocSection(command: Command): string {
  return `## dovetail ${command.name}\n\n\`\`\`text\n${commandHelp(command).trimEnd()}\n\`\`\`\n`;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const out = (text: string): void => void io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = COMMANDS.find((c) => c.name === topic);
    out(command ? commandHelp(command) : mainHelp());
    if (topic !== undefined && !command) return fail(io, 'help', unknownCommand(topic));
    return name === undefined ? ExitCode.CouldNotRun : ExitCode.Ok;
  }
  if (name === '--version' || name === '-v') {
    out(version());
    return ExitCode.Ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) return fail(io, undefined, unknownCommand(name));
  try {
    const parsed = parseOptions(rest, command.options, io.env, command.name);
    if (parsed.values['help'] === true) {
      out(commandHelp(command));
      return ExitCode.Ok;
    }
    return await command.run(parsed, io);
  } catch (error) {
    return fail(io, command.name, error);
  }
}

function unknownCommand(name: string): CliError {
  const names = COMMANDS.map((c) => c.name);
  const guess = closest(name, names);
  return new CliError('usage', `unknown command '${name}'`, `${guess ? `did you mean 'dovetail ${guess}'? ` : ''}the commands are ${names.join(', ')} (dovetail --help)`);
}

function fail(io: CliIo, command: string | undefined, error: unknown): number {
  const who = command ? `dovetail ${command}` : 'dovetail';
  if (error instanceof CliError) {
    io.stderr.write(`${who}: ${error.message}\n  ${error.hint}\n`);
  } else {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    io.stderr.write(`${who}: unexpected failure: ${text}\n  this is a bug in dovetail; please report it with the command line you ran\n`);
  }
  return ExitCode.CouldNotRun;
}
