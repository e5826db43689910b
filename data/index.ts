/** Data sets by name: where they live on disk, how `robust data` fetches them, how to load them. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RobustError } from '../util/errors.js';
import { removeStaleTemps, writeDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { take, type DataSplit } from './dataset.js';
import { CIFAR10_MD5, CIFAR10_URL, TEST_FILE, TRAIN_FILES, loadCifar10, parseCifarBatches, readCifarArchive, readFromDir } from './cifar10.js';
import { archiveOrigin, filesOrigin, folderOrigin, md5Of } from './origin.js';
import { FASHION_FILES, FASHION_MD5, FASHION_URL, loadFashionMnist, readIdxFile } from './fashion-mnist.js';
import { download } from './download.js';
import { ensureDir } from '../util/dirs.js';

export const DATASETS = ['cifar10', 'fashion-mnist', 'fashion-mnist-sample'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** The bundled 2,000/500-image Fashion-MNIST slice, for demos and tests on a fresh clone. */
export const SAMPLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'samples', 'fashion-mnist');

export function defaultDataDir(): string {
  return process.env.ROBUST_DATA_DIR ?? path.join(os.homedir(), '.cache', 'robust', 'data');
}

export function canonicalName(name: string): DatasetName {
  const n = name.toLowerCase();
  const alias: Record<string, DatasetName> = { fmnist: 'fashion-mnist', 'fmnist-sample': 'fashion-mnist-sample', sample: 'fashion-mnist-sample' };
  const c = (alias[n] ?? n) as DatasetName;
  if (!DATASETS.includes(c)) throw new RobustError(`unknown data set '${name}': choose one of ${DATASETS.join(', ')}`);
  return c;
}

function sampleDir(): string {
  // Run from dist/ or from the sources (tests): find the bundled folder either way.
  const candidates = [SAMPLE_DIR, path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'samples', 'fashion-mnist')];
  const dir = candidates.find((d) => fs.existsSync(d));
  if (!dir) throw new RobustError('the bundled Fashion-MNIST sample is missing from this installation');
  return dir;
}

export interface LoadOptions {
  dataDir?: string;
  /** Use only the first N training and test examples. */
  limit?: number;
  testLimit?: number;
}

/** Loads a prepared data set (see `prepareData`). */
export async function loadData(name: string, opts: LoadOptions = {}): Promise<DataSplit> {
  const ds = canonicalName(name);
  const dir = path.join(opts.dataDir ?? defaultDataDir(), ds);
  let split: DataSplit;
  if (ds === 'fashion-mnist-sample') split = loadFashionMnist(sampleDir(), ds);
  else {
    if (!fs.existsSync(dir)) throw new RobustError(`${ds} is not in ${dir}: run \`robust data ${ds}\` (or with --from FILE) first`);
    split = ds === 'cifar10' ? await loadCifar10(dir) : loadFashionMnist(dir);
  }
  return { ...split, train: take(split.train, opts.limit), test: take(split.test, opts.testLimit ?? opts.limit) };
}

export interface PrepareOptions {
  /** A local copy: the CIFAR-10 .tar.gz or a folder of its batches, or the folder of Fashion-MNIST .gz files. */
  from?: string;
  dataDir?: string;
  /** Receives one line on the source's origin (official checksum or not); default: stderr. */
  note?: (line: string) => void;
}

/**
 * Puts a data set in the data folder: from `from` (a local archive or folder) or by download.
 * Only the known member files are written, under names we choose, so an archive cannot place
 * anything outside the target folder.
 */
export async function prepareData(name: string, opts: PrepareOptions = {}): Promise<string> {
  const ds = canonicalName(name);
  // What killed runs left behind (a 150 MB hidden temp folder each) goes first, whatever is prepared.
  const root = opts.dataDir ?? defaultDataDir();
  for (const d of [root, ...DATASETS.map((s) => path.join(root, s))]) removeStaleTemps(d);
  if (ds === 'fashion-mnist-sample') return sampleDir();
  const note = opts.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = path.join(root, ds);
  // Everything is checked before anything is written, so bad input leaves the data folder as it was.
  if (ds === 'cifar10') {
    let archive = opts.from;
    if (!archive) {
      ensureDir(dir);
      archive = path.join(dir, 'cifar-10-binary.tar.gz');
      if (!fs.existsSync(archive)) await download(CIFAR10_URL, archive, CIFAR10_MD5);
    }
    if (!fs.existsSync(archive)) throw new RobustError(`${archive}: no such file or folder`);
    let files: Map<string, Uint8Array>;
    let origin: string;
    if (fs.statSync(archive).isDirectory()) {
      files = readFromDir(archive);
      origin = folderOrigin(archive);
    } else {
      const read = await readCifarArchive(archive);
      files = read.files;
      origin = archiveOrigin(archive, read.md5, CIFAR10_MD5);
    }
    const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !files.has(f));
    if (missing.length) throw new RobustError(`${archive}: not a CIFAR-10 binary archive (missing ${missing.join(', ')})`);
    for (const f of [...TRAIN_FILES, TEST_FILE]) parseCifarBatches([files.get(f)!], `${archive}: ${f}`); // validate
    note(origin);
    await writeDirAtomic(path.join(dir, 'cifar-10-batches-bin'), (tmp) => {
      for (const f of [...TRAIN_FILES, TEST_FILE]) fs.writeFileSync(path.join(tmp, f), files.get(f)!);
    });
  } else if (opts.from) {
    for (const f of Object.values(FASHION_FILES)) if (!fs.existsSync(path.join(opts.from, f))) throw new RobustError(`${path.join(opts.from, f)}: missing`);
    loadFashionMnist(opts.from); // validate the source before copying it
    const bytes = Object.values(FASHION_FILES).map((f) => [f, readIdxFile(path.join(opts.from!, f))] as const);
    note(filesOrigin(opts.from, Object.fromEntries(bytes.map(([f, b]) => [f, md5Of(b)])), FASHION_MD5));
    ensureDir(dir);
    for (const [f, b] of bytes) writeFileAtomic(path.join(dir, f), b);
  } else {
    ensureDir(dir);
    for (const f of Object.values(FASHION_FILES)) {
      const target = path.join(dir, f);
      if (!fs.existsSync(target)) await download(FASHION_URL + f, target, FASHION_MD5[f]);
    }
    loadFashionMnist(dir); // validate
  }
  return dir;
}
