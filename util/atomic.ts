import fs from 'node:fs';
import path from 'node:path';
import { ensureDir } from './dirs.js';
import { asWriteError } from './write-errors.js';
import { RobustError } from './errors.js';

/** Temp names are `.<target>.tmp-<pid>-<ms>`, and `<temp>.old` for a folder being replaced. */
export const TEMP_NAME = /^\.(.+)\.tmp-(\d+)-(\d+)(\.old)?$/;
/** When this process started, in ms since the epoch (temp names carry their creation time). */
const STARTED = Math.floor(performance.timeOrigin);
/** Folders already cleaned by this process. */
const cleaned = new Set<string>();

/** A temp name next to `target`, so that a rename onto it stays on one file system. */
function tempNameFor(target: string): string {
  const dir = path.dirname(path.resolve(target));
  if (!cleaned.has(dir)) removeStaleTemps(dir);
  return path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${Date.now()}`);
}

/** Whether a process with this pid exists (owned by anyone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Removes what killed writers left in `dir`: temp files and folders (a killed `robust data` left
 * a 150 MB one) whose process is gone, or that carry this process's pid but predate it (a pid
 * repeated by a later container run). A live process's temps are kept. A `.old` folder whose
 * target is missing (killed between the two renames) is put back as the target instead.
 * Called once per folder by the atomic writers, and by `robust data` for the data folders.
 */
export function removeStaleTemps(dir: string): void {
  const abs = path.resolve(dir);
  cleaned.add(abs);
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch {
    return; // no folder, nothing left behind
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    const p = path.join(abs, name);
    const pid = Number(m[2]);
    // With this process's pid it is stale only if made before this process started (an earlier
    // run that had the same pid); a temp of another live process is never touched.
    const stale = pid === process.pid ? Number(m[3]) < STARTED : !alive(pid);
    if (!stale) continue;
    try {
      const target = path.join(abs, m[1]);
      if (m[4] && !fs.existsSync(target)) fs.renameSync(p, target);
      else fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // Best effort: what cannot be removed now (permissions, a race with another cleaner) stays.
    }
  }
}

/** What lstat says a path is, in words, for refusals. */
function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a folder';
  if (st.isFile()) return 'a file';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/**
 * An atomic write renames a new file over its target: over a device (/dev/null), a pipe or a
 * symbolic link that would replace the thing itself, not write into it. Only a missing path or
 * one of the kind being written is replaced.
 */
function checkReplaceable(target: string, kind: 'file' | 'folder'): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch {
    return; // missing (or unreadable: the write itself will say why)
  }
  if (kind === 'file' ? st.isFile() : st.isDirectory()) return;
  throw new RobustError(
    `${target}: is ${kindOf(st)}, not a ${kind} robust may replace: give the path of a regular ${kind}`,
  );
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
  for (const [target] of files) checkReplaceable(target, 'file');
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
export async function writeDirAtomic(
  target: string,
  fill: (dir: string) => Promise<void> | void,
): Promise<void> {
  checkReplaceable(target, 'folder');
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
