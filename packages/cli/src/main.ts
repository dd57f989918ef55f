/** The `dovetail` process: runs the command line, stops gracefully on Ctrl-C / SIGTERM. */
import { runCli } from './cli.js';

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  // The first signal starts a graceful stop; later ones (a terminal's Ctrl-C
  // reaches both this process and its launcher, which forwards it) are
  // absorbed while shutdown finishes.
  process.on(signal, () => stop.abort());
}
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), stop: stop.signal });
