/**
 * The run folder (option out): a new run starts only in an empty folder, so it never writes over
 * another run's checkpoint and log (or over files that are not a run); resume continues the
 * run there, force starts over and removes the old run's files first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { optionError, RobustError } from '../util/errors.js';
import { readJsonFile } from '../util/json-file.js';
import { asWriteError } from '../util/write-errors.js';
import { ensureDir } from '../util/dirs.js';
import { alive, TEMP_NAME } from '../util/atomic.js';

/** What a training run writes into its folder (all of it goes with force). */
export const RUN_FILES = ['checkpoint', 'best', 'log.json', 'log.csv'] as const;

const LOCK = '.robust-run.lock';

/** Temp names of util/atomic.ts and util/dirs.ts left by a killed run, and a run's lock: not content. */
const isLeftover = (f: string) =>
  TEMP_NAME.test(f) || /^\.robust-write-test-\d+$/.test(f) || f === LOCK;

export function stateFile(out: string): string {
  return path.join(out, 'checkpoint', 'state.json');
}

/** The saved state of the run in `out`, or null when there is none; a damaged one is one line. */
export function readRunState<T extends object>(out: string): T | null {
  const f = stateFile(out);
  if (!fs.existsSync(f)) return null;
  const s = readJsonFile<T>(f, `${f}: no such file`);
  if (!s || typeof s !== 'object' || typeof (s as { config?: unknown }).config !== 'object')
    throw new RobustError(`${f}: not a robust training state`);
  return s;
}

function contents(out: string): string[] {
  if (!fs.existsSync(out)) return [];
  if (!fs.statSync(out).isDirectory())
    throw optionError((n) => `${n('out')} ${out} is a file, not a folder`);
  return fs.readdirSync(out).filter((f) => !isLeftover(f));
}

/**
 * Checks that a run may start or continue in `out`. Returns true when there is a run to resume.
 * Refused in one line: a non-empty folder without resume or force; resume of a folder that
 * holds files but no run; both flags at once.
 */
export function checkRunFolder(out: string, o: { resume?: boolean; force?: boolean }): boolean {
  if (o.resume && o.force)
    throw optionError(
      (n) => `give ${n('resume')} (continue the run) or ${n('force')} (start over), not both`,
    );
  const hasRun = fs.existsSync(stateFile(out));
  if (o.force) return false;
  if (o.resume && hasRun) return true;
  const files = contents(out);
  if (files.length === 0) return false;
  const shown = files.slice(0, 3).join(', ') + (files.length > 3 ? ', …' : '');
  if (hasRun)
    throw optionError(
      (n) =>
        `${out} holds a training run: set ${n('resume')} to continue it or ${n('force')} to start over (replaces it), or choose another ${n('out')} folder`,
    );
  throw optionError(
    (n) =>
      `${out} is not empty (${shown}) and holds no run to resume: choose another ${n('out')} folder, or set ${n('force')} to start a run there (replacing any ${RUN_FILES.join(', ')})`,
  );
}

/** Removes the old run's files (and leftovers of killed writes) from `out` for force. */
export function clearRun(out: string): void {
  if (!fs.existsSync(out)) return;
  for (const f of fs.readdirSync(out)) {
    const leftover = isLeftover(f) && RUN_FILES.some((r) => f.startsWith(`.${r}.tmp-`));
    if (!(RUN_FILES as readonly string[]).includes(f) && !leftover) continue;
    try {
      fs.rmSync(path.join(out, f), { recursive: true, force: true });
    } catch (e) {
      throw asWriteError(e, path.join(out, f));
    }
  }
}

/**
 * Claims `out` for this process (a lock file holding its pid), so that two trainings started
 * into one folder cannot both pass the empty-folder check and then write over each other. A lock
 * whose process is gone (killed) is taken over; this process may claim a folder it holds again.
 * Returns the release (also done when the process exits).
 */
export function holdRunFolder(out: string): () => void {
  // folders made here are removed again on release if the run leaves them empty (a refused command writes nothing)
  const made: string[] = [];
  for (let p = path.resolve(out); !fs.existsSync(p) && path.dirname(p) !== p; p = path.dirname(p))
    made.push(p);
  ensureDir(out);
  const file = path.join(out, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx'); // fails if it exists: the claim and the check are one step
      try {
        fs.writeSync(fd, String(process.pid));
      } finally {
        fs.closeSync(fd);
      }
      const release = () => {
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid))
            fs.rmSync(file, { force: true });
          for (const dir of made) fs.rmdirSync(dir); // deepest first; stops at the first that is not empty
        } catch {
          // already gone, or the run wrote into its folder
        }
        process.off('exit', release);
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw asWriteError(e, file);
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (pid === process.pid) return () => {};
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new RobustError(
          `${out} is in use by another training run (pid ${pid}): wait for it, or choose another out folder`,
        );
      fs.rmSync(file, { force: true }); // its process is gone: a killed run's lock
    }
  }
  throw new RobustError(`${out}: cannot claim the folder (${LOCK} keeps reappearing)`);
}
