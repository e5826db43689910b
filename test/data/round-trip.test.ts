/**
 * Round trips from the built-in Fashion-MNIST slice: written out as an .npz (Keras' four arrays),
 * as PNG class sub-folders (train/ and test/), and as a flat folder with labels.csv, each loads to
 * the built-in loader's bytes and labels. Results are keyed on the SHA-256 of the decoded bytes in
 * load order, so the .npz and the CSV (same order) give the built-in set's fingerprints exactly, and
 * the class folders (ImageFolder's order: class, then file name) those of the same images in that
 * order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadData } from '../../data/index.js';
import {
  dataFingerprint,
  imageSetFingerprint,
  type DataSplit,
  type ImageSet,
} from '../../data/dataset.js';
import { tmpDir } from '../helpers.js';
import { npy, npz, png } from './fixtures.js';

let builtin: DataSplit;
let dir: string;
const PIXELS = 28 * 28;

beforeAll(async () => {
  builtin = await loadData('sample');
  dir = tmpDir('round-trip');
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const image = (s: ImageSet, i: number) => s.images.subarray(i * PIXELS, (i + 1) * PIXELS);

/** `s` reordered: image k of the result is image order[k] of s. */
function reorder(s: ImageSet, order: number[]): ImageSet {
  const images = new Uint8Array(order.length * PIXELS);
  order.forEach((i, k) => images.set(image(s, i), k * PIXELS));
  return { ...s, images, labels: Uint8Array.from(order, (i) => s.labels[i]) };
}

const sameSet = (a: ImageSet, b: ImageSet) => {
  expect([a.count, a.height, a.width, a.channels]).toEqual([
    b.count,
    b.height,
    b.width,
    b.channels,
  ]);
  // Buffer.equals: one comparison instead of 1.5 M expect calls
  expect(Buffer.from(a.images).equals(Buffer.from(b.images))).toBe(true);
  expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
  expect(imageSetFingerprint(a)).toBe(imageSetFingerprint(b));
};

describe('the built-in Fashion-MNIST slice written out and read back', () => {
  it('as an .npz (x_train, y_train, x_test, y_test): the same bytes, labels and SHA-256', async () => {
    expect([builtin.train.count, builtin.test.count]).toEqual([2000, 500]);
    const file = path.join(dir, 'fmnist-sample.npz');
    const arrays = (s: ImageSet) => ({
      x: npy('|u1', [s.count, 28, 28], s.images),
      y: npy('|u1', [s.count], s.labels),
    });
    const [train, test] = [arrays(builtin.train), arrays(builtin.test)];
    fs.writeFileSync(
      file,
      npz({ x_train: train.x, y_train: train.y, x_test: test.x, y_test: test.y }, true),
    );
    const back = await loadData(`npz:${file}`, { note: () => {} });
    sameSet(back.train, builtin.train);
    sameSet(back.test, builtin.test);
    expect(dataFingerprint(back.train, back.test)).toBe(
      dataFingerprint(builtin.train, builtin.test),
    );
    expect(back.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('as PNG class sub-folders: the same images in ImageFolder order, and that order’s SHA-256', async () => {
    const root = path.join(dir, 'folders');
    // classes.txt names the classes (and fixes their order); folder names are the names
    const names = builtin.classes.map((c, i) => `${i}-${c.replace(/[^A-Za-z]+/g, '_')}`);
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'classes.txt'), names.join('\n') + '\n');
    const orders: Record<'train' | 'test', number[]> = { train: [], test: [] };
    for (const split of ['train', 'test'] as const) {
      const s = builtin[split];
      for (let i = 0; i < s.count; i++) {
        const folder = path.join(root, split, names[s.labels[i]]);
        fs.mkdirSync(folder, { recursive: true });
        fs.writeFileSync(
          path.join(folder, `${String(i).padStart(4, '0')}.png`),
          png(28, 28, 1, image(s, i)),
        );
      }
      // ImageFolder's order: by class, then by file name (= index here)
      orders[split] = Array.from({ length: s.count }, (_, i) => i).sort(
        (a, b) => s.labels[a] - s.labels[b] || a - b,
      );
    }
    const back = await loadData(`folder:${root}`, { note: () => {} });
    expect(back.classes).toEqual(names);
    for (const split of ['train', 'test'] as const)
      sameSet(back[split], reorder(builtin[split], orders[split]));
    // the order changed, so the fingerprint is not the built-in one: it is of the bytes as loaded
    expect(imageSetFingerprint(back.test)).not.toBe(imageSetFingerprint(builtin.test));
  });

  it('as a flat folder with labels.csv in the built-in order: the built-in test set’s SHA-256 exactly', async () => {
    const root = path.join(dir, 'flat');
    fs.mkdirSync(root);
    const s = builtin.test;
    const rows = ['file,label'];
    for (let i = 0; i < s.count; i++) {
      // names that sort against the row order: the CSV's order must win
      const name = `${String(s.count - i).padStart(4, '0')}.png`;
      fs.writeFileSync(path.join(root, name), png(28, 28, 1, image(s, i)));
      rows.push(`${name},${s.labels[i]}`);
    }
    fs.writeFileSync(path.join(root, 'labels.csv'), rows.join('\n') + '\n');
    const back = await loadData(`folder:${root}`, { note: () => {} });
    sameSet(back.test, s);
    expect(back.train.count).toBe(0);
  });
});
