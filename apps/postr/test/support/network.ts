import { httpTransport, TransportError } from '@dovetail/client';
import type { SyncTransport } from '@dovetail/client';

/** A device's way to the server, with a switch. */
export interface Network {
  /** Off: every request fails the way a dropped connection does. */
  online: boolean;
  /** Runs before each pull request is sent (a test's way to act in the middle of a sync). */
  beforePull?: (() => Promise<void>) | undefined;
  readonly transport: SyncTransport;
}

/**
 * The HTTP transport to `url`, behind a switch, so a test can take a device
 * offline: its sync fails with a `network` error (and would be retried),
 * while its writes keep committing locally.
 */
export function network(url: string): Network {
  const http = httpTransport({ url });
  const offline = (): Promise<never> => Promise.reject(new TransportError('network', 0, 'offline: the test switched the network off'));
  const net: Network = {
    online: true,
    transport: {
      push: (request, token, signal) => (net.online ? http.push(request, token, signal) : offline()),
      pull: async (request, token, signal) => {
        await net.beforePull?.();
        return net.online ? http.pull(request, token, signal) : offline();
      },
    },
  };
  return net;
}
