import { httpStatusOf, ProtocolError } from '@dovetail/protocol';
import { TransportError } from '@dovetail/client';
import { ServerError } from '@dovetail/server';
import type { SyncServer } from '@dovetail/server';

/**
 * What a device's transport makes of an error a server call threw, as the
 * HTTP server maps it: typed errors keep their code (and Retry-After),
 * anything else is a logged 500.
 */
export function toTransportError(error: unknown, server: SyncServer): TransportError {
  if (error instanceof ServerError) {
    return new TransportError(error.code, httpStatusOf(error.code), error.message, error.retryAfterSeconds === undefined ? undefined : error.retryAfterSeconds * 1000);
  }
  if (error instanceof ProtocolError) return new TransportError(error.code, httpStatusOf(error.code), error.message);
  server.log.error('internal error', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  return new TransportError('internal', 500, 'the server failed to handle this request; it was logged. Retry later');
}
