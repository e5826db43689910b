import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The real data sets beside the repository (present on CI and dev machines, not on a fresh clone). */
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data');
export const HAS_SHARED_CIFAR = fs.existsSync(path.join(SHARED_DATA, 'cifar10', 'cifar-10-binary.tar.gz'));

export function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(fs.realpathSync((process.env.TMPDIR ?? '/tmp')), `robust-${name}-`));
}
