import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FASHION_FILES,
  FASHION_MD5,
  loadFashionMnist,
  parseIdx,
} from '../../data/fashion-mnist.js';
import { filesOrigin } from '../../data/origin.js';
import { loadData, prepareData } from '../../data/index.js';
import { RobustError } from '../../util/errors.js';
import { HAS_SHARED_FASHION, missing, SHARED_DATA, tmpDir } from '../helpers.js';

if (missing(HAS_SHARED_FASHION))
  console.warn(
    `skipping the real Fashion-MNIST tests: ${SHARED_DATA}/fashion-mnist is absent (it exists on CI)`,
  );

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, data]);
}

describe('IDX format', () => {
  it('parses plain and gzipped files', () => {
    const raw = idx(
      [2, 2, 3],
      Uint8Array.from({ length: 12 }, (_, i) => i),
    );
    for (const buf of [raw, zlib.gzipSync(raw)]) {
      const { shape, data } = parseIdx(buf, 3, 'f');
      expect(shape).toEqual([2, 2, 3]);
      expect(data[11]).toBe(11);
    }
  });

  it('rejects wrong magic numbers and truncated data, naming the file', () => {
    expect(() => parseIdx(idx([3], new Uint8Array(3)), 3, 'labels.gz')).toThrow(
      /labels\.gz: wrong IDX magic/,
    );
    expect(() => parseIdx(idx([2, 2, 3], new Uint8Array(5)), 3, 'img')).toThrow(/truncated/);
    expect(() => parseIdx(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 1, 'x.gz')).toThrow(/corrupt gzip/);
  });

  it('returns valid data or throws RobustError for any bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom(1 as const, 3 as const),
        (bytes, dims) => {
          try {
            const { shape, data } = parseIdx(bytes, dims, 'fuzz');
            expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
          } catch (e) {
            expect(e).toBeInstanceOf(RobustError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('loads the bundled Fashion-MNIST sample', async () => {
    const split = await loadData('fashion-mnist-sample');
    expect(split.train.count).toBe(2000);
    expect(split.test.count).toBe(500);
    expect([split.train.height, split.train.width, split.train.channels]).toEqual([28, 28, 1]);
    expect(new Set(split.train.labels).size).toBe(10);
  });
});

/** The divisors of n, for rewriting a header's dimensions with the same product. */
const divisors = (n: number) =>
  Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

describe('IDX dimensions against the data set', () => {
  // The bundled slice's sizes: 2,000 training and 500 test images of 28×28.
  const TRAIN = 2000;
  const TEST = 500;
  const pixels = Uint8Array.from({ length: TRAIN * 784 }, (_, i) => i % 256);
  const images = (n: number) => pixels.subarray(0, n * 784);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  /** A folder loaded as 'fashion-mnist-sample', with uncompressed files (the loader reads both). */
  function folder(
    trainDims: number[],
    trainLabels: number,
    testDims: number[] = [TEST, 28, 28],
    testLabels = TEST,
  ): string {
    const dir = tmpDir('fmnist-dims');
    const write = (f: string, dims: number[], body: Uint8Array) =>
      fs.writeFileSync(path.join(dir, f.replace(/\.gz$/, '')), idx(dims, body));
    write(FASHION_FILES.trainImages, trainDims, images(TRAIN));
    write(FASHION_FILES.trainLabels, [trainLabels], labels(trainLabels));
    write(FASHION_FILES.testImages, testDims, images(TEST));
    write(FASHION_FILES.testLabels, [testLabels], labels(testLabels));
    return dir;
  }
  /** Any three dimensions whose product is `total` (so the byte count still matches). */
  const sameProduct = (total: number) =>
    fc
      .constantFrom(...divisors(total))
      .chain((a) => fc.constantFrom(...divisors(total / a)).map((b) => [a, b, total / a / b]));

  it('a header rewritten with the same byte count (14×56, count and height swapped, …) is refused (property)', () => {
    const trainDims = fc.oneof(
      sameProduct(TRAIN * 784),
      fc.constant([TRAIN, 28, 28]),
      fc.constantFrom([TRAIN, 14, 56], [28, TRAIN, 28], [TRAIN * 28, 28, 1]),
    );
    const testDims = fc.oneof(fc.constant([TEST, 28, 28]), sameProduct(TEST * 784));
    const labelCount = (n: number) => fc.oneof(fc.constant(n), fc.integer({ min: 1, max: n + 3 }));
    fc.assert(
      fc.property(
        trainDims,
        testDims,
        labelCount(TRAIN),
        labelCount(TEST),
        (trD, teD, trL, teL) => {
          const dir = folder(trD, trL, teD, teL);
          const ok =
            trD.join() === [TRAIN, 28, 28].join() &&
            teD.join() === [TEST, 28, 28].join() &&
            trL === TRAIN &&
            teL === TEST;
          let err: unknown = null;
          try {
            const split = loadFashionMnist(dir, 'fashion-mnist-sample');
            expect([
              split.train.count,
              split.train.height,
              split.train.width,
              split.test.count,
            ]).toEqual([TRAIN, 28, 28, TEST]);
          } catch (e) {
            err = e;
          }
          fs.rmSync(dir, { recursive: true });
          if (ok) expect(err).toBe(null);
          else {
            expect(
              err,
              'accepted a set whose dimensions or counts differ from the data set',
            ).toBeInstanceOf(RobustError);
            expect((err as Error).message).toMatch(/N×28×28|labels for|images, but/);
          }
        },
      ),
      {
        numRuns: 40,
        examples: [
          [[TRAIN, 14, 56], [TEST, 28, 28], TRAIN, TEST],
          [[28, TRAIN, 28], [TEST, 28, 28], TRAIN, TEST],
        ],
      },
    );
  });

  it('a partial set is refused as the full data set', () => {
    const dir = folder([TRAIN, 28, 28], TRAIN);
    expect(() => loadFashionMnist(dir, 'fashion-mnist')).toThrow(
      /2000 images, but fashion-mnist has 60000 training images/,
    );
  });

  it.skipIf(missing(HAS_SHARED_FASHION))(
    '--from a folder says in one line whether its files are the official ones (by their MD5)',
    async () => {
      const shared = path.join(SHARED_DATA, 'fashion-mnist');
      const notes: string[] = [];
      const dataDir = tmpDir('fmnist-origin');
      // The shared copy's .gz files are not byte-identical to the release (their MD5s differ): either line may come.
      await prepareData('fashion-mnist', { from: shared, dataDir, note: (l) => notes.push(l) });
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(
        /: verified: the official files \(MD5 of all 4 match\)$|: not the official files \(md5 differs for .*\): their contents were checked but their origin is not$/,
      );
      // the same images and labels gzipped again: valid, but not the bytes the official MD5s name
      const copy = tmpDir('fmnist-repacked');
      for (const f of Object.values(FASHION_FILES))
        fs.copyFileSync(path.join(shared, f), path.join(copy, f));
      const labels = path.join(copy, FASHION_FILES.trainLabels);
      fs.writeFileSync(
        labels,
        zlib.gzipSync(zlib.gunzipSync(fs.readFileSync(labels)), { level: 1 }),
      );
      notes.length = 0;
      await prepareData('fashion-mnist', { from: copy, dataDir, note: (l) => notes.push(l) });
      expect(notes).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${copy}: not the official files \\(md5 differs for [^)]*${FASHION_FILES.trainLabels}`,
          ),
        ),
      ]);
      // the line when every MD5 matches
      expect(filesOrigin(copy, FASHION_MD5, FASHION_MD5)).toBe(
        `${copy}: verified: the official files (MD5 of all 4 match)`,
      );
    },
  );

  it.skipIf(missing(HAS_SHARED_FASHION))(
    'the real Fashion-MNIST passes: 60,000 / 10,000 images of 28×28',
    () => {
      const split = loadFashionMnist(path.join(SHARED_DATA, 'fashion-mnist'));
      expect([split.train.count, split.test.count, split.train.height, split.train.width]).toEqual([
        60000, 10000, 28, 28,
      ]);
    },
  );
});
