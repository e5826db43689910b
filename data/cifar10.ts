/** CIFAR-10 in the official binary layout: records of 1 label byte + 3×1024 planar RGB bytes. */
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { RobustError } from '../util/errors.js';
import type { DataSplit, ImageSet } from './dataset.js';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
const RECORD = 3073;
export const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const TEST_FILE = 'test_batch.bin';

/** Parses concatenated binary batches into NHWC pixels; `source` names the file in errors. */
export function parseCifarBatches(buffers: Uint8Array[], source: string): ImageSet {
  let count = 0;
  for (const b of buffers) {
    if (b.length === 0 || b.length % RECORD !== 0) {
      throw new RobustError(`${source}: ${b.length} bytes is not a whole number of 3073-byte CIFAR-10 records (truncated or not CIFAR-10)`);
    }
    count += b.length / RECORD;
  }
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  let n = 0;
  for (const b of buffers) {
    for (let r = 0; r < b.length / RECORD; r++, n++) {
      const o = r * RECORD;
      const label = b[o];
      if (label > 9) throw new RobustError(`${source}: record ${n} has label ${label}, outside 0–9`);
      labels[n] = label;
      const dst = n * 3072;
      for (let p = 0; p < 1024; p++) {
        images[dst + p * 3] = b[o + 1 + p];
        images[dst + p * 3 + 1] = b[o + 1025 + p];
        images[dst + p * 3 + 2] = b[o + 2049 + p];
      }
    }
  }
  return { images, labels, count, height: 32, width: 32, channels: 3 };
}

/** Bytes of one CIFAR-10 batch file: 10,000 records of 1 label + 3,072 pixels. */
const BATCH_BYTES = 10_000 * 3073;
/** The official archive holds ~178 MB; anything far beyond that is not CIFAR-10. */
export const MAX_ARCHIVE_BYTES = 256 * 2 ** 20;

/** Why an archive entry is refused: an absolute path, a `..` segment, or a link leading out. */
export function unsafeEntry(entryPath: string, type: string, linkpath?: string): string | null {
  const bad = (p: string) => p.startsWith('/') || /^[a-zA-Z]:/.test(p) || p.split(/[\\/]/).includes('..');
  if (bad(entryPath)) return `unsafe path '${entryPath}'`;
  if ((type === 'SymbolicLink' || type === 'Link') && linkpath !== undefined && bad(linkpath)) return `link '${entryPath}' points outside the archive ('${linkpath}')`;
  return null;
}

/**
 * Reads the batch files out of a .tar.gz in memory (no extraction, so nothing is written where an
 * entry says). Archives with unsafe entries (tar-slip), oversized members or more data than the
 * real CIFAR-10 are refused.
 */
export async function readFromArchive(file: string): Promise<Map<string, Uint8Array>> {
  const found = new Map<string, Uint8Array>();
  const wanted = new Set([...TRAIN_FILES, TEST_FILE]);
  let problem: string | null = null;
  let total = 0;
  try {
    await tar.t({
      file,
      onReadEntry: (entry) => {
        total += entry.size ?? 0;
        problem ??= unsafeEntry(entry.path, entry.type, entry.linkpath);
        if (!problem && total > MAX_ARCHIVE_BYTES) problem = `holds more than ${MAX_ARCHIVE_BYTES >> 20} MiB: larger than CIFAR-10`;
        const base = path.posix.basename(entry.path);
        if (!problem && entry.type === 'File' && wanted.has(base) && (entry.size ?? 0) > BATCH_BYTES) problem = `${entry.path} is ${entry.size} bytes, more than a CIFAR-10 batch (${BATCH_BYTES})`;
        if (problem || entry.type !== 'File' || !wanted.has(base)) {
          entry.resume();
          return;
        }
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => found.set(base, Buffer.concat(chunks)));
      },
    });
  } catch (e) {
    throw new RobustError(`${file}: cannot read the archive (${(e as Error).message})`);
  }
  if (problem) throw new RobustError(`${file}: refused: ${problem}`);
  return found;
}

export function readFromDir(dir: string): Map<string, Uint8Array> {
  const inner = path.join(dir, 'cifar-10-batches-bin');
  const root = fs.existsSync(inner) ? inner : dir;
  const found = new Map<string, Uint8Array>();
  for (const f of [...TRAIN_FILES, TEST_FILE]) {
    const p = path.join(root, f);
    if (!fs.existsSync(p)) continue;
    const size = fs.statSync(p).size;
    if (size > BATCH_BYTES) throw new RobustError(`${p}: ${size} bytes, more than a CIFAR-10 batch (${BATCH_BYTES})`);
    found.set(f, fs.readFileSync(p));
  }
  return found;
}

/** Loads CIFAR-10 from a folder of .bin batches or from the official .tar.gz. */
export async function loadCifar10(source: string): Promise<DataSplit> {
  if (!fs.existsSync(source)) throw new RobustError(`${source}: no such file or folder`);
  const files = fs.statSync(source).isDirectory() ? readFromDir(source) : await readFromArchive(source);
  const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !files.has(f));
  if (missing.length) throw new RobustError(`${source}: not a CIFAR-10 binary set (missing ${missing.join(', ')})`);
  const train = parseCifarBatches(TRAIN_FILES.map((f) => files.get(f)!), `${source}: ${TRAIN_FILES.join('+')}`);
  const test = parseCifarBatches([files.get(TEST_FILE)!], `${source}: ${TEST_FILE}`);
  return {
    name: 'cifar10',
    classes: CIFAR10_CLASSES,
    train,
    test,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
  };
}
