/** Fashion-MNIST and MNIST in IDX format (optionally gzipped): the same four file names, 28×28 gray images. */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { RobustError } from '../util/errors.js';
import { readRegularFile } from '../util/read-file.js';
import type { DataSplit, ImageSet } from './dataset.js';
import { FASHION_CLASSES, idxImageSet, parseIdxBytes } from './idx.js';

export const FASHION_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
};
/** MD5 of the official gzipped files (as torchvision checks them). */
export const FASHION_MD5: Record<string, string> = {
  'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
  'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
  't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
  't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
};
export const FASHION_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** MD5 of MNIST's official gzipped files, as torchvision checks them (same file names as Fashion-MNIST's). */
export const MNIST_MD5: Record<string, string> = {
  'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
  'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
  't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
  't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
};
/** torchvision's mirrors, the one that answers first (the original site asks for a login at times). */
export const MNIST_MIRRORS = [
  'https://ossci-datasets.s3.amazonaws.com/mnist/',
  'http://yann.lecun.com/exdb/mnist/',
];

function gunzipIfNeeded(buf: Uint8Array, source: string): Uint8Array {
  if (buf[0] !== 0x1f || buf[1] !== 0x8b) return buf;
  try {
    return zlib.gunzipSync(buf, { maxOutputLength: MAX_IDX_BYTES });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new RobustError(
        `${source}: unpacks to more than ${MAX_IDX_BYTES >> 20} MiB, larger than any Fashion-MNIST file`,
      );
    throw new RobustError(`${source}: corrupt gzip data (${(e as Error).message})`);
  }
}

/** Fashion-MNIST's largest file (training images) is 47 MB unpacked; anything far beyond is refused. */
const MAX_IDX_BYTES = 64 * 2 ** 20;

/** Reads a regular file of at most the cap (a .gz may be at most the cap, too). */
export function readIdxFile(file: string): Buffer {
  return readRegularFile(file, { maxBytes: MAX_IDX_BYTES, what: 'Fashion-MNIST file' });
}

/** Parses an IDX file of unsigned bytes with `dims` dimensions, gzipped or not. */
export const parseIdx = (
  raw: Uint8Array,
  dims: 1 | 3,
  source: string,
): { shape: number[]; data: Uint8Array } =>
  parseIdxBytes(gunzipIfNeeded(raw, source), dims, source);

/** Images per split of each set: the full releases and the bundled slice (scripts/make-sample.ts). */
export const FASHION_COUNTS = {
  'fashion-mnist': { train: 60_000, test: 10_000 },
  'fashion-mnist-sample': { train: 2_000, test: 500 },
  mnist: { train: 60_000, test: 10_000 },
} as const;

/** One split from its IDX files, checked (data/idx.ts). */
function readSet(imagesFile: string, labelsFile: string): ImageSet {
  return idxImageSet(
    parseIdx(readIdxFile(imagesFile), 3, imagesFile),
    parseIdx(readIdxFile(labelsFile), 1, labelsFile),
    imagesFile,
    labelsFile,
  );
}

/**
 * Loads Fashion-MNIST or MNIST (`name` says which, hence how many images each split must hold)
 * from a folder of the four IDX files, gzipped or not.
 */
export function loadFashionMnist(
  dir: string,
  name: keyof typeof FASHION_COUNTS = 'fashion-mnist',
): DataSplit {
  const find = (f: string) => {
    for (const candidate of [f, f.replace(/\.gz$/, '')]) {
      const p = path.join(dir, candidate);
      if (fs.existsSync(p)) return p;
    }
    throw new RobustError(
      `${path.join(dir, f)}: missing (run \`robust data ${name === 'mnist' ? 'mnist' : 'fashion-mnist'}\`)`,
    );
  };
  const train = readSet(find(FASHION_FILES.trainImages), find(FASHION_FILES.trainLabels));
  const test = readSet(find(FASHION_FILES.testImages), find(FASHION_FILES.testLabels));
  // Counts last: a file that is damaged says so before a set that is merely partial does.
  const expected = FASHION_COUNTS[name];
  for (const [split, set, file] of [
    ['training', train, FASHION_FILES.trainImages],
    ['test', test, FASHION_FILES.testImages],
  ] as const) {
    const want = split === 'training' ? expected.train : expected.test;
    if (set.count !== want)
      throw new RobustError(
        `${path.join(dir, file)}: ${set.count} images, but ${name} has ${want} ${split} images (a partial or different set)`,
      );
  }
  if (name === 'mnist')
    return { name, classes: MNIST_CLASSES, train, test, mean: [0.1307], std: [0.3081] };
  return { name, classes: FASHION_CLASSES, train, test, mean: [0.286], std: [0.353] };
}
