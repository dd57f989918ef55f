/**
 * The command line's contact with the world, injected so tests run
 * commands in-process: output streams, environment, working directory,
 * and a signal that stops long-running commands (serve, dev).
 */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Aborted on Ctrl-C / SIGTERM; serve and dev shut down gracefully. */
  readonly stop?: AbortSignal;
}
