import fs from 'node:fs';
import path from 'node:path';
import { ensureDir } from './dirs.js';
import { asWriteError } from './write-errors.js';

/** A temp name next to `target`, so that a rename onto it stays on one file system. */
function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${Date.now()}`);
}

/** Writes a file so that readers see either the old or the whole new content, never a part. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  writeFilesAtomic([[target, data]]);
}

/**
 * Writes several files that belong together (a report set, images and their labels): all new
 * contents are written and synced to temp files first, and only then renamed into place, so a
 * failure (a full disk) leaves every old file as it was and no temp file behind.
 */
export function writeFilesAtomic(files: [target: string, data: string | Uint8Array][]): void {
  const written: [tmp: string, target: string][] = [];
  let current = '';
  try {
    for (const [target, data] of files) {
      current = target;
      ensureDir(path.dirname(target));
      const tmp = tempNameFor(target);
      written.push([tmp, target]);
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeFileSync(fd, data);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    for (const [tmp, target] of written) {
      current = target;
      fs.renameSync(tmp, target);
    }
  } catch (e) {
    for (const [tmp] of written) fs.rmSync(tmp, { force: true });
    throw asWriteError(e, current);
  }
}

/**
 * Fills a fresh folder through `fill`, then swaps it in place of `target` (the old one, if any, is
 * removed only after the new one is complete). A crash leaves either the old folder or the new one.
 */
export async function writeDirAtomic(target: string, fill: (dir: string) => Promise<void> | void): Promise<void> {
  const parent = path.dirname(path.resolve(target));
  ensureDir(parent);
  const tmp = tempNameFor(target);
  const old = `${tmp}.old`;
  try {
    fs.mkdirSync(tmp);
  } catch (e) {
    throw asWriteError(e, target);
  }
  try {
    await fill(tmp);
    if (fs.existsSync(target)) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
    throw asWriteError(e, target);
  }
}
