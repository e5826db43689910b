/** MNIST and CIFAR-100 (fine and coarse) as built-in sets, on synthetic files in the official formats. */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import * as tar from 'tar';
import {
  CIFAR100_COARSE,
  CIFAR100_FINE,
  CIFAR100_MD5,
  FINE_TO_COARSE,
  loadCifar100,
  parseCifar100,
} from '../../data/cifar100.js';
import { FASHION_FILES, MNIST_MD5 } from '../../data/fashion-mnist.js';
import { DATASETS, dataSlug, loadData, prepareData } from '../../data/index.js';
import { archiveOrigin } from '../../data/origin.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

/** n CIFAR-100 records: fine label i·37 mod 100, its superclass, and pixels encoding (record, channel, position). */
function records(n: number, coarse = (fine: number) => FINE_TO_COARSE[fine]): Uint8Array {
  const b = new Uint8Array(n * 3074);
  for (let i = 0; i < n; i++) {
    const fine = (i * 37) % 100;
    b[i * 3074] = coarse(fine);
    b[i * 3074 + 1] = fine;
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < 1024; p++) b[i * 3074 + 2 + c * 1024 + p] = (i * 11 + c * 60 + p) % 256;
  }
  return b;
}

/** The official archive's layout: cifar-100-binary/{train,test}.bin and the two name files. */
async function cifar100Archive(dir: string, train: Uint8Array, test: Uint8Array): Promise<string> {
  const inner = path.join(dir, 'src', 'cifar-100-binary');
  fs.mkdirSync(inner, { recursive: true });
  fs.writeFileSync(path.join(inner, 'train.bin'), train);
  fs.writeFileSync(path.join(inner, 'test.bin'), test);
  fs.writeFileSync(path.join(inner, 'fine_label_names.txt'), CIFAR100_FINE.join('\n') + '\n');
  fs.writeFileSync(path.join(inner, 'coarse_label_names.txt'), CIFAR100_COARSE.join('\n') + '\n');
  const archive = path.join(dir, 'cifar-100-binary.tar.gz');
  await tar.c({ gzip: true, file: archive, cwd: path.join(dir, 'src') }, ['cifar-100-binary']);
  return archive;
}

describe('CIFAR-100', () => {
  it('the class lists: 100 fine classes in 20 superclasses of 5', () => {
    expect(CIFAR100_FINE).toHaveLength(100);
    expect(new Set(CIFAR100_FINE).size).toBe(100);
    expect(CIFAR100_COARSE).toHaveLength(20);
    expect(FINE_TO_COARSE.every((c) => c >= 0 && c < 20)).toBe(true);
    for (let c = 0; c < 20; c++) expect(FINE_TO_COARSE.filter((x) => x === c)).toHaveLength(5);
    // spot checks against the data set's page: apple is fruit and vegetables, whale an aquatic mammal, tractor vehicles 2
    expect(CIFAR100_COARSE[FINE_TO_COARSE[CIFAR100_FINE.indexOf('apple')]]).toBe(
      'fruit_and_vegetables',
    );
    expect(CIFAR100_COARSE[FINE_TO_COARSE[CIFAR100_FINE.indexOf('whale')]]).toBe('aquatic_mammals');
    expect(CIFAR100_COARSE[FINE_TO_COARSE[CIFAR100_FINE.indexOf('tractor')]]).toBe('vehicles_2');
    // the mapping as published numerically (checked there against the release's coarse_labels)
    const published = [
      4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
      3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
      2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
      16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
    ];
    expect(FINE_TO_COARSE).toEqual(published);
  });

  it('parses records: planar RGB to NHWC, fine and coarse labels', () => {
    const s = parseCifar100(records(3), 'train.bin');
    expect(s.count).toBe(3);
    expect(Array.from(s.fine)).toEqual([0, 37, 74]);
    expect(Array.from(s.coarse)).toEqual([4, 9, 16]); // apple, house, shrew
    // image 2, position 35, green
    expect(s.images[2 * 3072 + 35 * 3 + 1]).toBe((2 * 11 + 60 + 35) % 256);
  });

  it('refuses truncated files, labels out of range, and a coarse label that is not its fine label’s superclass', () => {
    expect(() => parseCifar100(records(2).subarray(0, 3074 + 5), 'train.bin')).toThrow(
      /train\.bin: 3079 bytes is not a whole number of 3074-byte CIFAR-100 records/,
    );
    const bad = records(2);
    bad[3074 + 1] = 100;
    expect(() => parseCifar100(bad, 'test.bin')).toThrow(
      /test\.bin: record 1 has fine label 100, outside 0–99/,
    );
    expect(() =>
      parseCifar100(
        records(2, () => 3),
        'test.bin',
      ),
    ).toThrow(/record 0 has coarse label 3, but its fine label 0 \(apple\) is in superclass 4/);
    expect(() => parseCifar100(new Uint8Array(0), 'x')).toThrow(RobustError);
  });

  it('robust data cifar100 --from the archive: origin line, atomic copy of the two files; cifar100 and cifar100-coarse load from it', async () => {
    const dir = tmpDir('cifar100');
    const archive = await cifar100Archive(dir, records(20), records(5));
    const dataDir = path.join(dir, 'data');
    const notes: string[] = [];
    const where = await prepareData('cifar100-coarse', {
      from: archive,
      dataDir,
      note: (l) => notes.push(l),
    });
    expect(where).toBe(path.join(dataDir, 'cifar100'));
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${archive}: not the official archive \\(md5 [0-9a-f]{32}\\): its members were checked but its origin is not$`,
        ),
      ),
    ]);
    expect(archiveOrigin(archive, CIFAR100_MD5, CIFAR100_MD5)).toBe(
      `${archive}: verified: the official archive (MD5 ${CIFAR100_MD5})`,
    );
    expect(fs.readdirSync(path.join(dataDir, 'cifar100', 'cifar-100-binary')).sort()).toEqual([
      'test.bin',
      'train.bin',
    ]);
    const fine = await loadData('cifar100', { dataDir, limit: 7 });
    expect([fine.name, fine.train.count, fine.test.count, fine.classes.length]).toEqual([
      'cifar100',
      7,
      5,
      100,
    ]);
    expect(Array.from(fine.test.labels)).toEqual([0, 37, 74, 11, 48]);
    expect(fine.location).toBe(path.join(dataDir, 'cifar100'));
    const coarse = await loadData('cifar100-coarse', { dataDir });
    expect([coarse.name, coarse.classes.length]).toEqual(['cifar100-coarse', 20]);
    expect(Array.from(coarse.test.labels)).toEqual(
      [0, 37, 74, 11, 48].map((f) => FINE_TO_COARSE[f]),
    );
    expect(Buffer.from(coarse.test.images).equals(Buffer.from(fine.test.images))).toBe(true);
    // and straight from the archive or a folder of the two files
    expect((await loadCifar100(archive)).train.count).toBe(20);
    expect((await loadCifar100(path.join(dir, 'src'), 'coarse')).test.count).toBe(5);
  });

  it('a damaged archive leaves the data folder as it was; a missing file is named', async () => {
    const dir = tmpDir('cifar100-bad');
    const dataDir = path.join(dir, 'data');
    await prepareData('cifar100', {
      from: await cifar100Archive(path.join(dir, 'good'), records(4), records(2)),
      dataDir,
      note: () => {},
    });
    const before = fs.readFileSync(path.join(dataDir, 'cifar100', 'cifar-100-binary', 'train.bin'));
    const wrong = await cifar100Archive(
      path.join(dir, 'wrong'),
      records(4, () => 0),
      records(2),
    );
    await expect(prepareData('cifar100', { from: wrong, dataDir, note: () => {} })).rejects.toThrow(
      /train\.bin: record 0 has coarse label 0, but its fine label 0 \(apple\) is in superclass 4/,
    );
    expect(
      fs
        .readFileSync(path.join(dataDir, 'cifar100', 'cifar-100-binary', 'train.bin'))
        .equals(before),
    ).toBe(true);
    const src = path.join(dir, 'only-train');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'train.bin'), records(2));
    await expect(prepareData('cifar100', { from: src, dataDir, note: () => {} })).rejects.toThrow(
      new RegExp(`${src}: not a CIFAR-100 binary set \\(missing test\\.bin\\)`),
    );
    await expect(loadData('cifar100', { dataDir: path.join(dir, 'none') })).rejects.toThrow(
      /cifar100 is not in .*none\/cifar100: fetch it first with prepareData\('cifar100'\)/,
    );
  });
});

describe('MNIST', () => {
  const idx = (dims: number[], body: Uint8Array) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt32BE(0x800 + dims.length, 0);
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return zlib.gzipSync(Buffer.concat([head, body]), { level: 1 });
  };

  it('robust data mnist --from a folder of the four official-format files: 60,000 / 10,000 images, digits as classes', async () => {
    const dir = tmpDir('mnist');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const px = (n: number) => Uint8Array.from({ length: n * 784 }, (_, i) => (i * 13) % 256);
    const lb = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
    fs.writeFileSync(path.join(src, FASHION_FILES.trainImages), idx([60_000, 28, 28], px(60_000)));
    fs.writeFileSync(path.join(src, FASHION_FILES.trainLabels), idx([60_000], lb(60_000)));
    fs.writeFileSync(path.join(src, FASHION_FILES.testImages), idx([10_000, 28, 28], px(10_000)));
    fs.writeFileSync(path.join(src, FASHION_FILES.testLabels), idx([10_000], lb(10_000)));
    const dataDir = path.join(dir, 'data');
    const notes: string[] = [];
    await prepareData('mnist', { from: src, dataDir, note: (l) => notes.push(l) });
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${src}: not the official files \\(md5 differs for .*\\): their contents were checked but their origin is not$`,
        ),
      ),
    ]);
    const s = await loadData('mnist', { dataDir, limit: 100 });
    expect([s.name, s.train.count, s.test.count, s.train.height, s.train.channels]).toEqual([
      'mnist',
      100,
      100,
      28,
      1,
    ]);
    expect(s.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(s.mean).toEqual([0.1307]);
    expect(Object.keys(MNIST_MD5).sort()).toEqual(Object.values(FASHION_FILES).sort());
    // a partial set is not MNIST
    fs.writeFileSync(
      path.join(dataDir, 'mnist', FASHION_FILES.testImages),
      idx([500, 28, 28], px(500)),
    );
    fs.writeFileSync(path.join(dataDir, 'mnist', FASHION_FILES.testLabels), idx([500], lb(500)));
    await expect(loadData('mnist', { dataDir })).rejects.toThrow(
      /500 images, but mnist has 10000 test images/,
    );
  });
});

describe('names', () => {
  it('the built-in sets, and the slug a run folder is named after', () => {
    expect(DATASETS).toEqual([
      'cifar10',
      'cifar100',
      'cifar100-coarse',
      'mnist',
      'fashion-mnist',
      'fashion-mnist-sample',
    ]);
    expect(dataSlug('CIFAR-100')).toBe('cifar100');
    expect(dataSlug('folder:/data/My Photos/')).toBe('folder-My_Photos');
    expect(dataSlug('npz:/tmp/robustbench_cifar10.npz')).toBe('npz-robustbench_cifar10');
    expect(dataSlug('npy:x.npy,y.npy')).toBe('npy-x');
  });
});
