import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Schema } from '@dovetail/schema';
import type { Sql } from '@dovetail/server';
import { CliError } from './errors.js';

/** What `--seed` modules export: writes demo rows, returns the demo users to print tokens for. */
export type SeedFunction = (sql: Sql, schema: Schema) => Promise<readonly DemoUser[]>;

export interface DemoUser {
  readonly id: string;
  readonly name: string;
}

async function importFile(path: string, cwd: string, what: string, option: string): Promise<Record<string, unknown>> {
  const file = resolve(cwd, path);
  if (!existsSync(file)) throw new CliError('schema_module', `no ${what} module at ${file}`, `check the path given to ${option}`);
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError('schema_module', `the ${what} module ${path} failed to load: ${message}`, `fix the module so that \`node ${path}\` would load it (TypeScript modules need a TypeScript loader such as tsx)`);
  }
}

function isSchema(value: unknown): value is Schema {
  // `instanceof` fails when the module was given its own copy of
  // @dovetail/schema; the shape is what matters.
  return value instanceof Schema || (typeof value === 'object' && value !== null && 'tables' in value && typeof (value as { postgresDdl?: unknown }).postgresDdl === 'function');
}

/**
 * Loads the schema a module exports as `schema`, as its default export, or
 * as its only export that is a schema.
 */
export async function loadSchema(path: string | undefined, cwd: string): Promise<Schema> {
  if (!path) throw new CliError('usage', 'no schema module given', 'pass --schema <path> (or set DOVETAIL_SCHEMA) to a module that exports `schema = defineSchema(...)`');
  const module = await importFile(path, cwd, 'schema', '--schema');
  const schemas = Object.values(module).filter(isSchema);
  const found = [module['schema'], module['default']].find(isSchema) ?? (schemas.length === 1 ? schemas[0] : undefined);
  if (!found) {
    if (schemas.length > 1) throw new CliError('schema_module', `${path} exports ${schemas.length} schemas and none is named \`schema\``, 'export the one to serve as `schema` or as the default export');
    const names = Object.keys(module).join(', ') || 'nothing';
    throw new CliError('schema_module', `${path} exports no schema (it exports ${names})`, 'export it as `export const schema = defineSchema({...})` or as the default export');
  }
  return found;
}

/** Loads the seed function a module exports as `seed` or as its default export. */
export async function loadSeed(path: string, cwd: string): Promise<SeedFunction> {
  const module = await importFile(path, cwd, 'seed', '--seed');
  const found = [module['seed'], module['default']].find((v) => typeof v === 'function');
  if (!found) throw new CliError('schema_module', `${path} exports no seed function`, 'export `async function seed(sql, schema)` returning the demo users `{ id, name }[]`');
  return found as SeedFunction;
}
