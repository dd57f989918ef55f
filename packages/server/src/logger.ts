/** Structured logs: one JSON object per line. Inject your own to route them elsewhere. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(write: (line: string) => void = (line) => process.stdout.write(line + '\n'), now: () => number = Date.now): Logger {
  const emit = (level: string, message: string, fields: Record<string, unknown> = {}): void => {
    write(JSON.stringify({ time: new Date(now()).toISOString(), level, message, ...fields }));
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
