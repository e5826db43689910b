/** CIFAR-10 in the official binary layout: records of 1 label byte + 3×1024 planar RGB bytes. */
import fs from 'node:fs';
import path from 'node:path';
import { RobustError } from '../util/errors.js';
import type { DataSplit, ImageSet } from './dataset.js';
import { readTarMembers, type TarLimits } from './archive.js';
import { readRegularFile } from '../util/read-file.js';

const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
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
      throw new RobustError(
        `${source}: ${b.length} bytes is not a whole number of 3073-byte CIFAR-10 records (truncated or not CIFAR-10)`,
      );
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
      if (label > 9)
        throw new RobustError(`${source}: record ${n} has label ${label}, outside 0–9`);
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
/**
 * The official archive unpacks to 184.4 MB (six batches and two small text files); 10% more leaves
 * room for other tar writers' headers and padding. Anything larger is not CIFAR-10.
 */
const MAX_ARCHIVE_BYTES = Math.ceil(6 * BATCH_BYTES * 1.1);

const ARCHIVE_LIMITS: TarLimits = {
  wanted: new Set([...TRAIN_FILES, TEST_FILE]),
  maxMemberBytes: BATCH_BYTES,
  memberWhat: 'CIFAR-10 batch',
  maxBytes: MAX_ARCHIVE_BYTES,
  what: 'CIFAR-10 archive',
};

/** The batch files of a CIFAR-10 .tar.gz and the archive's MD5, read in memory (nothing is extracted). */
export async function readCifarArchive(
  file: string,
): Promise<{ files: Map<string, Uint8Array>; md5: string }> {
  const { members, md5 } = await readTarMembers(file, { ...ARCHIVE_LIMITS, md5: true });
  return { files: members, md5: md5! };
}

/** The batch files of a CIFAR-10 .tar.gz (see `readTarMembers` for what is refused). */
export async function readFromArchive(file: string): Promise<Map<string, Uint8Array>> {
  return (await readTarMembers(file, ARCHIVE_LIMITS)).members;
}

/** The batch files of a folder: the official layout's cifar-10-batches-bin/ inside it, or the folder itself. */
export function readFromDir(dir: string): Map<string, Uint8Array> {
  const inner = path.join(dir, 'cifar-10-batches-bin');
  const root = fs.existsSync(inner) ? inner : dir;
  // Batches in both places would leave the choice to the loader: a planted copy must not win silently.
  const twice =
    root === inner
      ? [...TRAIN_FILES, TEST_FILE].find((f) => fs.existsSync(path.join(dir, f)))
      : undefined;
  if (twice)
    throw new RobustError(
      `${dir}: holds ${twice} both directly and in cifar-10-batches-bin/: which one is meant is ambiguous`,
    );
  const found = new Map<string, Uint8Array>();
  for (const f of [...TRAIN_FILES, TEST_FILE]) {
    const p = path.join(root, f);
    if (!fs.existsSync(p)) continue;
    found.set(f, readRegularFile(p, { maxBytes: BATCH_BYTES, what: 'CIFAR-10 batch' }));
  }
  return found;
}

/** Loads CIFAR-10 from a folder of .bin batches or from the official .tar.gz. */
export async function loadCifar10(source: string): Promise<DataSplit> {
  if (!fs.existsSync(source)) throw new RobustError(`${source}: no such file or folder`);
  const files = fs.statSync(source).isDirectory()
    ? readFromDir(source)
    : await readFromArchive(source);
  const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !files.has(f));
  if (missing.length)
    throw new RobustError(`${source}: not a CIFAR-10 binary set (missing ${missing.join(', ')})`);
  const train = parseCifarBatches(
    TRAIN_FILES.map((f) => files.get(f)!),
    `${source}: ${TRAIN_FILES.join('+')}`,
  );
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
