import { basename, extname, join } from 'node:path';

/** `2024-05-01T12-00-00-000Z`: sortable, and valid in file names everywhere. */
export const stampOf = (ms: number): string => new Date(ms).toISOString().replace(/[:.]/g, '-');

/** `<dir>/<name>.doctor-backup-<stamp><ext>`, so a backup sorts next to its file. */
export function backupFileName(dir: string, file: string, ms: number, ext: string = extname(file)): string {
  const stem = basename(file, extname(file));
  return join(dir, `${stem}.doctor-backup-${stampOf(ms)}${ext}`);
}
