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

/**
 * Parses CIFAR-10 batch files into NHWC pixels; `source` names the file in errors. Each must be a
 * whole batch of the official release, 10,000 records: one cut at a record boundary is refused.
 */
export function parseCifarBatches(buffers: Uint8Array[], source: string): ImageSet {
  for (const b of buffers) checkBatchSize(b.length, source);
  return parseCifarRecords(buffers, source);
}

/** Refuses a batch file of any size but the official one's (10,000 records), naming both sizes. */
export function checkBatchSize(size: number, source: string): void {
  if (size !== BATCH_BYTES)
    throw new RobustError(
      `${source}: ${size} bytes, but a CIFAR-10 batch file is ${BATCH_BYTES} bytes (${BATCH_RECORDS} records of ${RECORD}): ${size < BATCH_BYTES ? 'truncated or ' : ''}not CIFAR-10`,
    );
}

/** Refuses a batch file `parseCifarBatches` would refuse (its size, a label over 9), without decoding its pixels. */
export function checkCifarBatch(b: Uint8Array, source: string): void {
  checkBatchSize(b.length, source);
  for (let n = 0; n < BATCH_RECORDS; n++)
    if (b[n * RECORD] > 9)
      throw new RobustError(`${source}: record ${n} has label ${b[n * RECORD]}, outside 0–9`);
}

/**
 * Parses any number of whole records (concatenated buffers) into NHWC pixels, without the batch
 * size check: the record layout itself, for tests' small synthetic batches; loaders use
 * parseCifarBatches.
 */
export function parseCifarRecords(buffers: Uint8Array[], source: string): ImageSet {
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

/** Records in each CIFAR-10 batch file. */
export const BATCH_RECORDS = 10_000;
/** Bytes of one CIFAR-10 batch file: 10,000 records of 1 label + 3,072 pixels. */
export const BATCH_BYTES = BATCH_RECORDS * RECORD;
/**
 * The official archive unpacks to 184.4 MB (six batches and two small text files); 10% more leaves
 * room for other tar writers' headers and padding. Anything larger is not CIFAR-10.
 */
export const MAX_ARCHIVE_BYTES = Math.ceil(6 * BATCH_BYTES * 1.1);
