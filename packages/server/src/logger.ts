/** Structured logs: one JSON object per line. Inject your own to route them elsewhere. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(write: (line: string) => void = (line) => process.stdout.write(line + '\n'), now: () => number = Date.now): Logger {
  const emit = (level: string, message: string, fields: Record<string, unknown> = {}): void => {
    // A field never hides the time, level or message; a value JSON cannot
    // hold (a bigint, a cycle) never turns logging into a crash.
    const head = { time: new Date(now()).toISOString(), level, message };
    let line: string;
    try {
      line = JSON.stringify({ ...head, ...fields, ...head }, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
    } catch (error) {
      line = JSON.stringify({ ...head, logError: `the fields could not be written as JSON: ${error instanceof Error ? error.message : String(error)}` });
    }
    write(line);
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
