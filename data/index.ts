/**
 * Data sets by name or source spec: the built-in sets (where they live on disk, how `robust data`
 * fetches them, how to load them) and users' own files: `folder:PATH`, `npz:FILE`, `npy:X[,Y]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { optionError, RobustError } from '../util/errors.js';
import { removeStaleTemps, writeDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { requireLabels, take, type DataSplit } from './dataset.js';
import {
  CIFAR10_MD5,
  CIFAR10_URL,
  TEST_FILE,
  TRAIN_FILES,
  checkCifarBatch,
  loadCifar10,
  readCifarArchive,
  readFromDir,
} from './cifar10.js';
import { checkBatchSize } from './cifar10-records.js';
import {
  CIFAR100_DIR,
  CIFAR100_FILES,
  CIFAR100_MD5,
  CIFAR100_URL,
  loadCifar100,
  parseCifar100Files,
  readCifar100Archive,
  readCifar100Dir,
} from './cifar100.js';
import { archiveOrigin, filesOrigin, folderOrigin } from './origin.js';
import { md5Of } from './md5.js';
import {
  FASHION_FILES,
  FASHION_MD5,
  FASHION_URL,
  MNIST_MD5,
  MNIST_MIRRORS,
  loadFashionMnist,
  readIdxFile,
} from './fashion-mnist.js';
import { download } from './download.js';
import { ensureDir } from '../util/dirs.js';
import { loadFolder } from './folder-node.js';
import { FOLDER_HINT } from './folder.js';
import { loadNpyFiles, loadNpz } from './arrays.js';

export const DATASETS = [
  'cifar10',
  'cifar100',
  'cifar100-coarse',
  'mnist',
  'fashion-mnist',
  'fashion-mnist-sample',
] as const;
type DatasetName = (typeof DATASETS)[number];

/** The folder each built-in set is kept in under the data folder: CIFAR-100's two label sets share one. */
const STORED_AS: Record<DatasetName, string> = {
  cifar10: 'cifar10',
  cifar100: 'cifar100',
  'cifar100-coarse': 'cifar100',
  mnist: 'mnist',
  'fashion-mnist': 'fashion-mnist',
  'fashion-mnist-sample': 'fashion-mnist-sample',
};

/** The bundled 2,000/500-image Fashion-MNIST slice, for demos and tests on a fresh clone. */
export const SAMPLE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'data',
  'samples',
  'fashion-mnist',
);

export function defaultDataDir(): string {
  return process.env.ROBUST_DATA_DIR ?? path.join(os.homedir(), '.cache', 'robust', 'data');
}

function canonicalName(name: string): DatasetName {
  const n = name.toLowerCase();
  const alias: Record<string, DatasetName> = {
    fmnist: 'fashion-mnist',
    'fmnist-sample': 'fashion-mnist-sample',
    sample: 'fashion-mnist-sample',
    'cifar-10': 'cifar10',
    'cifar-100': 'cifar100',
    'cifar100-fine': 'cifar100',
  };
  const c = (alias[n] ?? n) as DatasetName;
  if (!DATASETS.includes(c))
    throw new RobustError(
      `unknown data set '${name}': choose one of ${DATASETS.join(', ')}, or your own: folder:PATH, npz:FILE, npy:X.npy[,Y.npy]`,
    );
  return c;
}

/** A data source: a built-in set, or users' files. */
export type DataSpec =
  | { kind: 'builtin'; name: DatasetName }
  | { kind: 'folder'; path: string }
  | { kind: 'npz'; file: string }
  | { kind: 'npy'; x: string; y?: string };

/**
 * Parses `--data`: a built-in name, `folder:PATH`, `npz:FILE` or `npy:X.npy[,Y.npy]` (paths may
 * not contain commas there; relative paths are from the working folder).
 */
export function parseDataSpec(spec: string): DataSpec {
  const m = /^(folder|npz|npy):(.*)$/s.exec(spec);
  if (!m) return { kind: 'builtin', name: canonicalName(spec) };
  const [, kind, rest] = m;
  if (rest.trim() === '')
    throw optionError((n) => `${n('data')} ${spec}: give a path after '${kind}:'`);
  if (kind === 'folder') return { kind, path: rest };
  if (kind === 'npz') return { kind, file: rest };
  const parts = rest.split(',');
  if (parts.length > 2 || parts.some((p) => p.trim() === ''))
    throw optionError(
      (n) =>
        `${n('data')} ${spec}: npy: takes the images and optionally the labels, npy:X.npy or npy:X.npy,Y.npy`,
    );
  return { kind: 'npy', x: parts[0], ...(parts[1] !== undefined ? { y: parts[1] } : {}) };
}

/** A short name for folders named after the data (a run folder's default): the set's name, or the source's base name. */
export function dataSlug(spec: string): string {
  const s = parseDataSpec(spec);
  if (s.kind === 'builtin') return s.name;
  const base = path
    .basename(path.resolve(s.kind === 'folder' ? s.path : s.kind === 'npz' ? s.file : s.x))
    .replace(/\.(npz|npy)$/i, '');
  return `${s.kind}-${base.replace(/[^A-Za-z0-9._-]+/g, '_') || 'data'}`;
}

function sampleDir(): string {
  // Run from dist/ or from the sources (tests): find the bundled folder either way.
  const candidates = [
    SAMPLE_DIR,
    path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'samples', 'fashion-mnist'),
  ];
  const dir = candidates.find((d) => fs.existsSync(d));
  if (!dir)
    throw new RobustError('the bundled Fashion-MNIST sample is missing from this installation');
  return dir;
}

export interface LoadOptions {
  dataDir?: string;
  /** Use only the first N training and test examples (users' files: only these are decoded). */
  limit?: number;
  testLimit?: number;
  /** Accept a source without test labels (the split says `unlabeled`; its labels are all 0 until filled in). */
  allowUnlabeled?: boolean;
  /** The command trains: a source without training images is refused. */
  needTrain?: boolean;
  /** Receives notes on users' files (the layout assumed, rounding); default: stderr. */
  note?: (line: string) => void;
}

async function loadBuiltin(ds: DatasetName, opts: LoadOptions): Promise<DataSplit> {
  if (ds === 'fashion-mnist-sample')
    return { ...loadFashionMnist(sampleDir(), ds), location: sampleDir() };
  const dir = path.join(opts.dataDir ?? defaultDataDir(), STORED_AS[ds]);
  if (!fs.existsSync(dir))
    throw optionError((n) =>
      // the CLI names options as flags: its user runs `robust data`, a library user prepareData
      n('from') === 'from'
        ? `${ds} is not in ${dir}: fetch it first with prepareData('${ds}') (from: a local copy)`
        : `${ds} is not in ${dir}: fetch it first with \`robust data ${ds}\` (${n('from')} FILE: from a local copy)`,
    );
  const split =
    ds === 'cifar10'
      ? await loadCifar10(dir)
      : ds === 'cifar100' || ds === 'cifar100-coarse'
        ? await loadCifar100(dir, ds === 'cifar100' ? 'fine' : 'coarse')
        : loadFashionMnist(dir, ds);
  return { ...split, location: dir };
}

/** Why a user source has no test labels or no training images, and what would give them. */
const LABEL_HINT: Record<
  Exclude<DataSpec['kind'], 'builtin'>,
  { labels: string; train: string }
> = {
  folder: FOLDER_HINT,
  npz: { labels: 'no y (or y_test) array', train: 'no x_train and y_train arrays' },
  npy: { labels: 'no labels file: npy:X.npy,Y.npy', train: 'npy: files hold test images only' },
};

/**
 * Loads a data set: a built-in one prepared by `prepareData`, or users' files (`folder:PATH`,
 * `npz:FILE`, `npy:X[,Y]`; see data/folder.ts and data/arrays.ts for the layouts).
 */
export async function loadData(name: string, opts: LoadOptions = {}): Promise<DataSplit> {
  const spec = parseDataSpec(name);
  if (spec.kind === 'builtin') {
    const split = await loadBuiltin(spec.name, opts);
    if (opts.needTrain && split.train.count === 0)
      throw new RobustError(`${split.name} has no training images`);
    return {
      ...split,
      train: take(split.train, opts.limit),
      test: take(split.test, opts.testLimit ?? opts.limit),
    };
  }
  const o = { limit: opts.limit, testLimit: opts.testLimit, note: opts.note };
  const split =
    spec.kind === 'folder'
      ? await loadFolder(spec.path, o)
      : spec.kind === 'npz'
        ? loadNpz(spec.file, o)
        : loadNpyFiles(spec.x, spec.y, o);
  const hint = LABEL_HINT[spec.kind];
  if (opts.needTrain && split.train.count === 0)
    throw new RobustError(
      `${split.name} has no training images (${hint.train}): this command trains, so it needs them`,
    );
  if (!opts.allowUnlabeled) requireLabels(split, hint.labels);
  return split;
}

interface PrepareOptions {
  /** A local copy: the CIFAR .tar.gz or a folder of its files, or the folder of the (Fashion-)MNIST .gz files. */
  from?: string;
  dataDir?: string;
  /** Receives one line on the source's origin (official checksum or not); default: stderr. */
  note?: (line: string) => void;
}

type Note = (line: string) => void;

/** The archive (`from`, or the official one downloaded into `dir`) or folder, read in memory, and the line on its origin. */
async function readCifarSource(
  dir: string,
  from: string | undefined,
  official: { url: string; md5: string },
  read: {
    archive: (f: string) => Promise<{ files: Map<string, Uint8Array>; md5: string }>;
    folder: (d: string) => Map<string, Uint8Array>;
  },
): Promise<{ source: string; files: Map<string, Uint8Array>; origin: string }> {
  let source = from;
  if (!source) {
    ensureDir(dir);
    source = path.join(dir, official.url.split('/').pop()!);
    if (!fs.existsSync(source)) await download(official.url, source, official.md5);
  }
  if (!fs.existsSync(source)) throw new RobustError(`${source}: no such file or folder`);
  if (fs.statSync(source).isDirectory())
    return { source, files: read.folder(source), origin: folderOrigin(source) };
  const { files, md5 } = await read.archive(source);
  return { source, files, origin: archiveOrigin(source, md5, official.md5) };
}

/**
 * What is wrong with the CIFAR-10 set prepared in `dir` (a batch missing, cut, or with records
 * eval's loader refuses); undefined when there is none or it is sound.
 */
function preparedCifar10Problem(dir: string): string | undefined {
  const prepared = path.join(dir, 'cifar-10-batches-bin');
  if (!fs.existsSync(prepared)) return undefined;
  for (const f of [...TRAIN_FILES, TEST_FILE]) {
    const file = path.join(prepared, f);
    if (!fs.existsSync(file)) return `${file}: missing`;
    try {
      checkBatchSize(fs.statSync(file).size, file);
      checkCifarBatch(fs.readFileSync(file), file);
    } catch (e) {
      if (e instanceof RobustError) return e.message;
      throw e;
    }
  }
  return undefined;
}

async function prepareCifar10(dir: string, from: string | undefined, note: Note): Promise<void> {
  // A damaged prepared set is replaced: say so, before a download that would otherwise come unexplained.
  const damaged = preparedCifar10Problem(dir);
  const prepared = path.join(dir, 'cifar-10-batches-bin');
  // a sound prepared set stays: fetching it again would change nothing (a local source replaces it)
  if (!damaged && !from && fs.existsSync(prepared)) {
    note(`CIFAR-10 is already prepared in ${prepared}`);
    return;
  }
  const archive = path.join(dir, CIFAR10_URL.split('/').pop()!);
  if (damaged && !from)
    note(
      `the prepared CIFAR-10 is damaged (${damaged}): ${fs.existsSync(archive) ? `unpacking it again from ${archive}` : `downloading ${CIFAR10_URL} again`}`,
    );
  let read: Awaited<ReturnType<typeof readCifarSource>>;
  try {
    read = await readCifarSource(
      dir,
      from,
      { url: CIFAR10_URL, md5: CIFAR10_MD5 },
      { archive: readCifarArchive, folder: readFromDir },
    );
    const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !read.files.has(f));
    if (missing.length)
      throw new RobustError(
        `${read.source}: not a CIFAR-10 binary archive (missing ${missing.join(', ')})`,
      );
    for (const f of [...TRAIN_FILES, TEST_FILE])
      checkCifarBatch(read.files.get(f)!, `${read.source}: ${f}`); // validate
  } catch (e) {
    // --from cannot repair it either: one line on both
    if (damaged && from && e instanceof RobustError)
      throw new RobustError(`${e.message}; and the prepared CIFAR-10 is damaged (${damaged})`);
    throw e;
  }
  const { files, origin } = read;
  if (damaged && from)
    note(`the prepared CIFAR-10 is damaged (${damaged}): replacing it from ${from}`);
  note(origin);
  await writeDirAtomic(path.join(dir, 'cifar-10-batches-bin'), (tmp) => {
    for (const f of [...TRAIN_FILES, TEST_FILE]) fs.writeFileSync(path.join(tmp, f), files.get(f)!);
  });
}

async function prepareCifar100(dir: string, from: string | undefined, note: Note): Promise<void> {
  const { source, files, origin } = await readCifarSource(
    dir,
    from,
    { url: CIFAR100_URL, md5: CIFAR100_MD5 },
    { archive: readCifar100Archive, folder: readCifar100Dir },
  );
  parseCifar100Files(files, source); // validate: record sizes, label ranges, each coarse label its fine label's
  note(origin);
  await writeDirAtomic(path.join(dir, CIFAR100_DIR), (tmp) => {
    for (const f of Object.values(CIFAR100_FILES))
      fs.writeFileSync(path.join(tmp, f), files.get(f)!);
  });
}

/** The four IDX .gz files of MNIST or Fashion-MNIST, copied from `from` or downloaded (trying each mirror). */
async function prepareIdx(
  ds: 'mnist' | 'fashion-mnist',
  dir: string,
  from: string | undefined,
  note: Note,
): Promise<void> {
  const md5s = ds === 'mnist' ? MNIST_MD5 : FASHION_MD5;
  if (from) {
    for (const f of Object.values(FASHION_FILES))
      if (!fs.existsSync(path.join(from, f)))
        throw new RobustError(`${path.join(from, f)}: missing`);
    loadFashionMnist(from, ds); // validate the source before copying it
    const bytes = Object.values(FASHION_FILES).map(
      (f) => [f, readIdxFile(path.join(from, f))] as const,
    );
    note(filesOrigin(from, Object.fromEntries(bytes.map(([f, b]) => [f, md5Of(b)])), md5s));
    ensureDir(dir);
    for (const [f, b] of bytes) writeFileAtomic(path.join(dir, f), b);
    return;
  }
  ensureDir(dir);
  const mirrors = ds === 'mnist' ? MNIST_MIRRORS : [FASHION_URL];
  for (const f of Object.values(FASHION_FILES)) {
    const target = path.join(dir, f);
    for (let m = 0; !fs.existsSync(target); m++) {
      try {
        await download(mirrors[m] + f, target, md5s[f]);
      } catch (e) {
        if (!(e instanceof RobustError) || m === mirrors.length - 1) throw e;
        process.stderr.write(`${e.message}; trying ${mirrors[m + 1]}\n`);
      }
    }
  }
  loadFashionMnist(dir, ds); // validate
}

/**
 * Puts a data set in the data folder: from `from` (a local archive or folder) or by download.
 * Only the known member files are written, under names we choose, so an archive cannot place
 * anything outside the target folder. Everything is checked before anything is written, so bad
 * input leaves the data folder as it was.
 */
export async function prepareData(name: string, opts: PrepareOptions = {}): Promise<string> {
  const ds = canonicalName(name);
  // What killed runs left behind (a 150 MB hidden temp folder each) goes first, whatever is prepared.
  const root = opts.dataDir ?? defaultDataDir();
  for (const d of [root, ...[...new Set(Object.values(STORED_AS))].map((s) => path.join(root, s))])
    removeStaleTemps(d);
  if (ds === 'fashion-mnist-sample') return sampleDir();
  const note = opts.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = path.join(root, STORED_AS[ds]);
  if (ds === 'cifar10') await prepareCifar10(dir, opts.from, note);
  else if (ds === 'cifar100' || ds === 'cifar100-coarse')
    await prepareCifar100(dir, opts.from, note);
  else await prepareIdx(ds, dir, opts.from, note);
  return dir;
}
