import type { OptionSpec } from './options.js';

/**
 * The options shared by several commands, declared once. A command lists
 * the ones it takes; `--help`, the parser and the environment fallback all
 * read these declarations.
 */
export const schemaOption: OptionSpec = {
  name: 'schema',
  type: 'string',
  env: 'DOVETAIL_SCHEMA',
  value: '<path>',
  description: 'module that exports the schema (`export const schema = defineSchema(...)`)',
};

export const databaseUrlOption: OptionSpec = {
  name: 'database-url',
  type: 'string',
  env: 'DATABASE_URL',
  value: '<url>',
  description: 'Postgres to use (postgres://...); without it, embedded Postgres in --data-dir',
};

export const dataDirOption: OptionSpec = {
  name: 'data-dir',
  type: 'string',
  env: 'DOVETAIL_DATA_DIR',
  default: '.dovetail-data',
  value: '<dir>',
  description: 'where embedded Postgres keeps its files',
};

export const portOption: OptionSpec = { name: 'port', type: 'number', env: 'PORT', default: 8787, value: '<port>', description: 'HTTP port (0 picks a free one)' };

export const hostOption: OptionSpec = { name: 'host', type: 'string', env: 'HOST', default: '127.0.0.1', value: '<host>', description: 'interface to listen on (0.0.0.0 for all)' };

export const jwtSecretOption: OptionSpec = {
  name: 'jwt-secret',
  type: 'string',
  env: 'JWT_SECRET',
  secret: true,
  value: '<secret>',
  description: 'HS256 secret that signs the tokens (e.g. your Supabase JWT secret)',
};

export const jwksUrlOption: OptionSpec = { name: 'jwks-url', type: 'string', env: 'DOVETAIL_JWKS_URL', value: '<url>', description: 'JWKS URL for RS256/ES256 tokens, instead of --jwt-secret' };

export const retentionOption: OptionSpec = {
  name: 'retention',
  type: 'string',
  env: 'DOVETAIL_RETENTION',
  default: '30d',
  value: '<duration>',
  description: 'how long deletions are kept for offline devices (e.g. 12h, 30d); older devices resync',
};

export const jsonOption: OptionSpec = { name: 'json', type: 'boolean', description: 'print one JSON document instead of text' };

export const seedOption: OptionSpec = { name: 'seed', type: 'string', env: 'DOVETAIL_SEED', value: '<path>', description: 'module exporting `seed(sql, schema)`, which writes demo rows and returns the demo users' };
