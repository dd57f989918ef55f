import { describeDriverContract } from '@dovetail/client/driver-contract';
import { nodeDriver, tempDir } from './fixtures.js';

describeDriverContract('better-sqlite3', () => {
  const t = tempDir();
  return Promise.resolve({ driver: nodeDriver({ directory: t.dir }), cleanup: () => Promise.resolve(t.cleanup()) });
});
