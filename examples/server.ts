/**
 * `npm start`: the sync server on embedded Postgres (PGlite, data kept in
 * `.dovetail-data/`) with the example schema, or on any Postgres named by
 * DATABASE_URL. Prints how to connect and a token to try it with.
 */
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { createAuthenticator, embeddedSql, jsonLogger, postgresSql, startHttpServer, SyncServer } from '@dovetail/server';
import { exampleSchema } from './schema.js';

const port = Number(process.env['PORT'] ?? 8787);
const secret = process.env['JWT_SECRET'] ?? randomBytes(32).toString('hex');
const url = process.env['DATABASE_URL'];
const dataDir = process.env['DOVETAIL_DATA_DIR'] ?? '.dovetail-data';

const sql = url ? await postgresSql(url) : await embeddedSql(dataDir);
const sync = new SyncServer({ schema: exampleSchema, sql, authenticate: createAuthenticator({ secret }), log: jsonLogger() });
await sync.setup();
const server = await startHttpServer(sync, { port, host: process.env['HOST'] ?? '127.0.0.1' });
const token = await new SignJWT({ name: 'Ann' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u_ann').setIssuedAt().setExpirationTime('12h').sign(new TextEncoder().encode(secret));

console.log(`
Dovetail sync server on ${server.url}  (database: ${url ? 'Postgres from DATABASE_URL' : `embedded PGlite in ${dataDir}/`})

  health:  curl ${server.url}/health
  pull:    curl -s ${server.url}/v1/pull -H 'authorization: Bearer ${token}' \\
             -H 'content-type: application/json' \\
             -d '{"protocolVersion":1,"clientId":"curl","schemaVersion":1,"cursor":null}'

  A token for user u_ann (12 h):  ${token}
  ${process.env['JWT_SECRET'] ? 'Tokens are checked with JWT_SECRET.' : 'Tokens are checked with a random secret made for this run; set JWT_SECRET (e.g. your Supabase JWT secret) to use your own.'}

  From an app:  createClient({ schema, driver }).bind({ userId, sync: { transport: httpTransport({ url: '${server.url}' }), getToken } })
  Ctrl-C stops the server.
`);

const stop = async (): Promise<void> => {
  await server.close();
  await sql.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
