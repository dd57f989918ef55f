import type { Logger } from './logger.js';
import { SIGNAL_CHANGES_SQL } from './setup.js';
import type { SqlQueryable } from './sql.js';

/**
 * Tells every server instance that the engine committed changes: pushes
 * write quietly (see `QUIET_SETTING`) and signal with their last COMMIT;
 * what they committed without signalling it (a push that failed part
 * way) is signalled here once they are over. Signals that come while one
 * is being sent fold into one more.
 */
export class ChangeSignal {
  readonly #db: SqlQueryable;
  readonly #log: Logger;
  #sending: Promise<void> | undefined;
  #again = false;

  constructor(db: SqlQueryable, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  /** Signals now, or right after the signal under way. */
  signal(): void {
    if (this.#sending) {
      this.#again = true;
      return;
    }
    this.#sending = this.#send();
  }

  /** Resolves when no signal is being sent (for shutdown and tests). */
  async settled(): Promise<void> {
    while (this.#sending) await this.#sending;
  }

  async #send(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.#db.query(SIGNAL_CHANGES_SQL);
      } while (this.#again);
    } catch (error) {
      // A lost signal delays pokes until the next write or a device's own
      // scheduled sync; it never loses a change.
      this.#log.warn('could not signal committed changes to the poke service', { error: error instanceof Error ? error.message : String(error) });
    } finally {
      this.#sending = undefined;
    }
  }
}
