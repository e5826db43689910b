/**
 * The files `robust attack --save/--grid` writes, decided and checked before the attack runs: a
 * bad path must fail in one line at once, not after minutes of work, and no output may replace
 * another output, an input, or the file standard output is going to.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkOption, optionError, RobustError, type OptionWords } from '../util/errors.js';
import { ensureWritableDir } from '../util/dirs.js';
import { hasLabelFile } from './save-adversarials.js';

export interface OutputFile {
  /** The option that names it, for messages (the CLI says its flag). */
  option: 'save' | 'grid';
  /** Which of the option's files, when it writes several (" (its labels)"). */
  part?: string;
  file: string;
}

/** The outputs of one attack run; `files` lists them all, for `checkOutputs`. */
export interface AttackOutputs {
  images?: string;
  labels?: string;
  grid?: string;
  files: OutputFile[];
}

/**
 * The adversarial images (`--save`; IDX data also gets `<save>.labels`) and the PNG grid
 * (`--grid`, by default the --save name with a .png extension, or `<save>.grid.png` when
 * --save itself ends in .png, so the grid never lands on the images).
 */
export function attackOutputs(
  save: string | undefined,
  grid: string | undefined,
  channels: number,
): AttackOutputs {
  const labels = save !== undefined && hasLabelFile(channels) ? `${save}.labels` : undefined;
  const stem = save?.replace(/\.[^./]*$/, '');
  const gridFile =
    grid ??
    (save === undefined ? undefined : `${stem}.png` === save ? `${stem}.grid.png` : `${stem}.png`);
  const files: OutputFile[] = [];
  if (save !== undefined) files.push({ option: 'save', file: save });
  if (labels !== undefined) files.push({ option: 'save', part: ' (its labels)', file: labels });
  if (gridFile !== undefined)
    files.push(
      grid !== undefined
        ? { option: 'grid', file: gridFile }
        : { option: 'save', part: ' (its PNG grid)', file: gridFile },
    );
  return { images: save, labels, grid: gridFile, files };
}

/** The path a rename onto `file` replaces: its folder's real path plus its own name (a link itself is replaced, not its target). */
function landing(file: string): string {
  const abs = path.resolve(file);
  return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
}

const inside = (file: string, dir: string) => {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
};

/** `stat` of `p`, undefined when there is nothing there (also when a parent is a file). */
function statOf(p: string, what: OptionWords): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw optionError((n) => `${what(n)}: cannot be checked (${code ?? (e as Error).message})`);
  }
}

/** Standard output's file, when it is redirected to a regular file. */
function stdoutFile(): fs.Stats | undefined {
  try {
    const st = fs.fstatSync(1);
    return st.isFile() ? st : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Throws a one-line RobustError unless every output can be written: a file name (not a folder),
 * in an existing writable folder, distinct from the other outputs and from standard output's
 * file, and not replacing an existing file inside a protected folder (the model's, the data's).
 */
export function checkOutputs(
  outputs: OutputFile[],
  protect: { what: string; dir: string }[],
): void {
  const seen = new Map<string, OutputFile>();
  const out = stdoutFile();
  for (const o of outputs) {
    const { file } = o;
    // `at(n)`: this output as its option and file, e.g. "save adv.bin" (the CLI: "--save adv.bin")
    const named = (f: OutputFile, n: (option: string) => string) => `${n(f.option)}${f.part ?? ''}`;
    const at = (n: (option: string) => string) => `${named(o, n)} ${file}`;
    checkOption(
      file.trim() !== '' && !file.includes('\0'),
      (n) => `${named(o, n)} needs a file name`,
    );
    const abs = path.resolve(file);
    const stat = statOf(abs, at);
    checkOption(
      !stat?.isDirectory() && !/[\\/]$/.test(file),
      (n) => `${at(n)} is a folder: give a file name, e.g. ${path.join(file, 'adv.bin')}`,
    );
    const dir = path.dirname(abs);
    const dirStat = statOf(dir, at);
    checkOption(dirStat, (n) => `${at(n)}: folder ${dir} does not exist`);
    checkOption(dirStat.isDirectory(), (n) => `${at(n)}: ${dir} is not a folder`);
    try {
      ensureWritableDir(dir); // a probe file: the permission bits alone miss read-only mounts, /proc and the like
    } catch (e) {
      if (e instanceof RobustError) throw optionError((n) => `${at(n)}: ${e.message}`);
      throw e;
    }
    const target = landing(file);
    const other = seen.get(target);
    if (other)
      throw optionError(
        (n) =>
          `${at(n)} is the same file as ${named(other, n)} ${other.file}: give them different names`,
      );
    seen.set(target, o);
    checkOption(
      !(out && stat && stat.dev === out.dev && stat.ino === out.ino),
      (n) => `${at(n)} is the file standard output is redirected to`,
    );
    for (const p of protect) {
      if (!fs.existsSync(p.dir)) continue;
      checkOption(
        !(stat && inside(target, fs.realpathSync(p.dir))),
        (n) => `${at(n)} would replace a file of ${p.what} (${p.dir}): write it elsewhere`,
      );
    }
  }
}
