import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Command } from '../command.js';
import type { CliIo } from '../io.js';
import { loadSeed } from '../load-module.js';
import type { DemoUser } from '../load-module.js';
import { stringOption } from '../options.js';
import { seedOption } from '../option-specs.js';
import { authenticatorFrom, serveOptions, startServing, untilStopped } from './serve.js';

const TOKEN_LIFETIME = '12h';

async function demoToken(user: DemoUser, secret: string): Promise<string> {
  return new SignJWT({ name: user.name })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user.id)
    .setIssuedAt()
    .setExpirationTime(TOKEN_LIFETIME)
    .sign(new TextEncoder().encode(secret));
}

function banner(url: string, database: string, schemaVersion: number, users: readonly { user: DemoUser; token: string }[], secretGiven: boolean): string {
  const lines = [
    '',
    `Dovetail dev server on ${url}`,
    `  database: ${database}`,
    `  health:   curl ${url}/health`,
    '',
  ];
  if (users.length > 0) {
    lines.push(`Demo tokens (valid ${TOKEN_LIFETIME}):`);
    for (const { user, token } of users) lines.push(`  ${user.name} (${user.id}):`, `    ${token}`);
    const first = users[0];
    if (first) {
      lines.push(
        '',
        `Try a pull as ${first.user.name}:`,
        `  curl -s ${url}/v1/pull -H 'authorization: Bearer ${first.token}' -H 'content-type: application/json' \\`,
        `    -d '{"protocolVersion":1,"clientId":"curl","schemaVersion":${schemaVersion},"cursor":null}'`,
      );
    }
  }
  lines.push('', secretGiven ? 'Tokens are checked with JWT_SECRET.' : 'Tokens are signed with a secret made for this run; set JWT_SECRET to keep them across restarts.', 'Ctrl-C stops the server.', '');
  return lines.join('\n');
}

export const devCommand: Command = {
  name: 'dev',
  summary: 'serve with demo data and demo tokens, for local development',
  usage: 'dev --schema <path> [--seed <path>] [options]',
  details: `Like 'serve', plus: a JWT secret made for the run (unless JWT_SECRET is set), the
seed module's demo rows written straight into Postgres (they reach devices like any
other write), and a token printed for each demo user.

example:
  dovetail dev --schema apps/postr/src/schema.ts --seed apps/postr/src/seed.ts`,
  options: [...serveOptions, seedOption],
  async run(parsed, io: CliIo) {
    const given = stringOption(parsed.values, 'jwt-secret');
    const secret = given ?? randomBytes(32).toString('hex');
    const seedPath = stringOption(parsed.values, 'seed');
    const seed = seedPath ? await loadSeed(seedPath, io.cwd) : undefined;
    const serving = await startServing(parsed.values, io, authenticatorFrom({ ...parsed.values, 'jwks-url': undefined }, secret));
    try {
      const users = seed ? await seed(serving.database.sql, serving.schema) : [];
      const withTokens = await Promise.all(users.map(async (user) => ({ user, token: await demoToken(user, secret) })));
      io.stderr.write(banner(serving.server.url, serving.database.description, serving.schema.version, withTokens, given !== undefined));
    } catch (error) {
      await serving.close();
      throw error;
    }
    await untilStopped(io);
    await serving.close();
    return 0;
  },
};
