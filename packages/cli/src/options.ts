import { CliError } from './errors.js';
import { closest } from './suggest.js';

/**
 * Every option of `dovetail` is declared once, here, as data: the parser,
 * the environment fallback and `--help` are all driven by these
 * declarations, so a flag cannot exist in one place and not the others.
 */
export type OptionType = 'string' | 'number' | 'boolean';

export interface OptionSpec {
  readonly name: string;
  readonly type: OptionType;
  readonly description: string;
  /** Read when the flag is absent. */
  readonly env?: string;
  /** Shown in help and used when neither the flag nor the variable is set. */
  readonly default?: string | number | boolean;
  /** The placeholder in help (`--port <port>`). */
  readonly value?: string;
  /** Secrets are never echoed back (help shows only whether they are set). */
  readonly secret?: boolean;
}

export type OptionValues = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Parsed {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  /** Where each value came from, for messages (`--port`, `PORT`, default). */
  readonly sources: Readonly<Record<string, 'flag' | 'env' | 'default'>>;
}

const HELP: OptionSpec = { name: 'help', type: 'boolean', description: 'show this help' };

/**
 * Parses `argv` against the options a command declares. Accepts
 * `--name value`, `--name=value`, `--flag` and `--no-flag`; `--` ends the
 * options. An unknown option is an error that names the closest one.
 */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[], env: NodeJS.ProcessEnv, command: string): Parsed {
  const all = [...specs, HELP];
  const byName = new Map(all.map((s) => [s.name, s]));
  const values: Record<string, string | number | boolean | undefined> = {};
  const sources: Record<string, 'flag' | 'env' | 'default'> = {};
  const positionals: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h') {
      values['help'] = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw unknownOption(arg, all, command);
    const eq = arg.indexOf('=');
    const rawName = arg.slice(2, eq === -1 ? undefined : eq);
    const negated = rawName.startsWith('no-') && !byName.has(rawName);
    const name = negated ? rawName.slice(3) : rawName;
    const spec = byName.get(name);
    if (!spec || (negated && spec.type !== 'boolean')) throw unknownOption(`--${rawName}`, all, command);
    if (name in values) throw new CliError('usage', `--${name} is given twice`, `give it once (dovetail ${command} --help)`);
    if (spec.type === 'boolean') {
      if (eq !== -1) {
        const text = arg.slice(eq + 1);
        if (text !== 'true' && text !== 'false') throw new CliError('usage', `--${name} takes no value, got '${text}'`, `write --${name} or --no-${name}`);
        values[name] = text === 'true';
      } else {
        values[name] = !negated;
      }
      sources[name] = 'flag';
      continue;
    }
    let text: string | undefined;
    if (eq !== -1) text = arg.slice(eq + 1);
    else {
      text = argv[i + 1];
      if (text === undefined || (text.startsWith('--') && text.length > 2)) {
        throw new CliError('usage', `--${name} needs a value`, `write --${name} ${spec.value ?? `<${name}>`}`);
      }
      i++;
    }
    values[name] = convert(spec, text, `--${name}`);
    sources[name] = 'flag';
  }

  for (const spec of specs) {
    if (spec.name in values) continue;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (spec.env && fromEnv !== undefined && fromEnv !== '') {
      values[spec.name] = convert(spec, fromEnv, spec.env);
      sources[spec.name] = 'env';
    } else if (spec.default !== undefined) {
      values[spec.name] = spec.default;
      sources[spec.name] = 'default';
    }
  }
  return { values, positionals, sources };
}

function convert(spec: OptionSpec, text: string, where: string): string | number | boolean {
  if (spec.type === 'string') return text;
  if (spec.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off)$/i.test(text)) return false;
    throw new CliError('usage', `${where} must be true or false, got '${text}'`, `set ${where} to true or false`);
  }
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new CliError('usage', `${where} must be a number, got '${text}'`, `set ${where} to a number such as ${String(spec.default ?? 1)}`);
  return n;
}

function unknownOption(arg: string, specs: readonly OptionSpec[], command: string): CliError {
  const names = specs.map((s) => `--${s.name}`);
  const guess = closest(arg.split('=')[0] ?? arg, names);
  return new CliError('usage', `unknown option ${arg} for 'dovetail ${command}'`, guess ? `did you mean ${guess}? (dovetail ${command} --help lists every option)` : `dovetail ${command} --help lists every option`);
}

/** The options part of a command's help, aligned, with env names and defaults. */
export function optionsHelp(specs: readonly OptionSpec[]): string {
  const rows = [...specs, HELP].map((s) => {
    const left = `--${s.name}${s.type === 'boolean' ? '' : ` ${s.value ?? `<${s.name}>`}`}`;
    const extra: string[] = [];
    if (s.env) extra.push(`env ${s.env}`);
    if (s.default !== undefined && !s.secret) extra.push(`default ${String(s.default)}`);
    return { left, right: `${s.description}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}` };
  });
  const width = Math.max(...rows.map((r) => r.left.length));
  return rows.map((r) => `  ${r.left.padEnd(width)}  ${r.right}`).join('\n');
}

/** Typed accessors: the parser already converted values to their declared type. */
export function stringOption(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function numberOption(values: OptionValues, name: string): number | undefined {
  const v = values[name];
  return typeof v === 'number' ? v : undefined;
}

export function flag(values: OptionValues, name: string): boolean {
  return values[name] === true;
}
