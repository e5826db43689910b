/**
 * Making folders without `mkdirSync({ recursive: true })`, which spins forever in Node when a
 * component cannot be created on some file systems (e.g. under /proc): each missing component is
 * made in turn and the first failure is reported.
 */
import fs from 'node:fs';
import path from 'node:path';
import { optionError, RobustError } from './errors.js';

/** Creates `dir` and its missing parents; throws a RobustError naming the folder on failure. */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let p = path.resolve(dir);
  while (!fs.existsSync(p)) {
    missing.unshift(p);
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  if (fs.existsSync(p) && !fs.statSync(p).isDirectory())
    throw new RobustError(`${dir}: ${p} is not a folder`);
  for (const m of missing) {
    try {
      fs.mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new RobustError(
          `${dir}: output folder is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        );
    }
  }
}

/** `ensureDir` plus a probe write, so the error comes before any work is done. */
export function ensureWritableDir(dir: string): void {
  ensureDir(dir);
  const probe = path.join(dir, `.robust-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new RobustError(
      `${dir}: output folder is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/** An output folder given by a user (`option` names it in errors): not empty, not the file system's root, normalized (so `x/../run` is `run`). */
export function outputFolder(option: string, value: string): string {
  if (value.trim() === '')
    throw optionError((n) => `${n(option)} must name a folder, got an empty string`);
  const normalized = path.normalize(value);
  if (path.resolve(normalized) === path.parse(path.resolve(normalized)).root)
    throw optionError(
      (n) => `${n(option)} ${value} is the file system's root: give a folder for the results`,
    );
  return normalized;
}
