/**
 * CIFAR-10's binary records (1 label byte + 3×1024 planar RGB bytes) and the facts of the official
 * release, without Node: the CLI's loader (data/cifar10.ts) and the page parse with this code.
 */
import { RobustError } from '../util/errors.js';
import type { ImageSet } from './dataset.js';

export const CIFAR10_CLASSES = [
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
export const BATCH_BYTES = 10_000 * 3073;
/**
 * The official archive unpacks to 184.4 MB (six batches and two small text files); 10% more leaves
 * room for other tar writers' headers and padding. Anything larger is not CIFAR-10.
 */
export const MAX_ARCHIVE_BYTES = Math.ceil(6 * BATCH_BYTES * 1.1);
