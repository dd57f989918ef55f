export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** Runs one command line; resolves to the exit code. */
export function runCli(_argv: readonly string[], io: CliIo): Promise<number> {
  io.stderr.write('dovetail: not ready\n');
  return Promise.resolve(2);
}
