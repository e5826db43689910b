/** npz:FILE and npy:X[,Y]: what Python users have on disk, and what must be refused. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Zip, ZipPassThrough } from 'fflate';
import { loadNpyFiles, loadNpz } from '../../data/arrays.js';
import { imageSetFingerprint, withClassCount } from '../../data/dataset.js';
import { loadData, parseDataSpec } from '../../data/index.js';
import { RobustError } from '../../util/errors.js';
import { missing, tmpDir } from '../helpers.js';
import { hasPython, npy, npz, pattern, python, write } from './fixtures.js';

// On CI numpy is there (.ci/run installs python3-numpy): the cross-check runs, or fails.
const HAS_NUMPY = hasPython('numpy');
if (missing(HAS_NUMPY))
  console.warn(
    'skipping the numpy cross-check: /usr/bin/python3 has no numpy (apt-get install python3-numpy)',
  );

/** n images of h×w×c as NHWC bytes, and the same as NCHW. */
function images(n: number, h: number, w: number, c: number) {
  const nhwc = pattern(n * h * w * c, 3);
  const nchw = new Uint8Array(nhwc.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++)
          nchw[((i * c + k) * h + y) * w + x] = nhwc[((i * h + y) * w + x) * c + k];
  return { nhwc, nchw };
}

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RobustError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('npz:FILE', () => {
  // 4×5 RGB: neither spatial size is 1 or 3, so N×C×H×W is told from N×H×W×C
  const { nhwc, nchw } = images(5, 4, 5, 3);
  const labels = [0, 3, 1, 2, 3];

  it('uint8 NHWC x with int64 y, stored (np.savez) and deflated (np.savez_compressed)', () => {
    const dir = tmpDir('npz');
    for (const compressed of [false, true]) {
      const f = write(
        path.join(dir, `d${compressed}.npz`),
        npz(
          { x: npy('|u1', [5, 4, 5, 3], nhwc), y: npy('<i8', [5], { values: labels }) },
          compressed,
        ),
      );
      const notes: string[] = [];
      const s = loadNpz(f, { note: (l) => notes.push(l) });
      expect(s.name).toBe(`npz:${f}`);
      expect(s.location).toBe(dir);
      expect([s.test.count, s.test.height, s.test.width, s.test.channels]).toEqual([5, 4, 5, 3]);
      expect(Buffer.from(s.test.images).equals(Buffer.from(nhwc))).toBe(true);
      expect(Array.from(s.test.labels)).toEqual(labels);
      expect(s.classes).toEqual(['0', '1', '2', '3']);
      expect(s.classesFrom).toBe('labels');
      expect(s.train.count).toBe(0);
      expect(notes).toEqual([`${f}: x.npy: shape (5, 4, 5, 3) read as N×H×W×C (channels last)`]);
    }
  });

  it('float32 NCHW in [0,1] (a PyTorch dump) gives the same bytes, saying which layout it assumed', () => {
    const dir = tmpDir('npz-nchw');
    const floats = Array.from(nchw, (v) => v / 255);
    const f = write(
      path.join(dir, 'd.npz'),
      npz({
        x: npy('<f4', [5, 3, 4, 5], { values: floats }),
        y: npy('>i2', [5], { values: labels }),
      }),
    );
    const notes: string[] = [];
    const s = loadNpz(f, { note: (l) => notes.push(l) });
    expect(Buffer.from(s.test.images).equals(Buffer.from(nhwc))).toBe(true);
    expect(Array.from(s.test.labels)).toEqual(labels);
    expect(notes).toEqual([
      `${f}: x.npy: shape (5, 3, 4, 5) read as N×C×H×W (channels first, as PyTorch)`,
    ]); // k/255 in float32 is no rounding
  });

  it('floats that are not k/255 are rounded, and a note says how far', () => {
    const dir = tmpDir('npz-round');
    const f = write(
      path.join(dir, 'd.npz'),
      npz({
        x: npy('<f8', [1, 2, 2], { values: [0, 0.5, 1, 0.1234] }),
        y: npy('|u1', [1], { values: [0] }),
      }),
    );
    const notes: string[] = [];
    const s = loadNpz(f, { note: (l) => notes.push(l) });
    expect(Array.from(s.test.images)).toEqual([0, 128, 255, 31]);
    expect(notes).toEqual([
      `${f}: x.npy: 2 of 4 float values are not multiples of 1/255: rounded to 8 bits (largest change 0.500/255)`,
    ]);
    expect(s.test.channels).toBe(1); // N×H×W is gray
  });

  it("Keras' x_train, y_train, x_test, y_test are the two splits", () => {
    const dir = tmpDir('npz-keras');
    const tr = images(6, 2, 2, 1).nhwc;
    const te = images(2, 2, 2, 1).nhwc;
    const f = write(
      path.join(dir, 'mnist.npz'),
      npz(
        {
          x_train: npy('|u1', [6, 2, 2], tr),
          y_train: npy('|u1', [6], { values: [0, 1, 2, 3, 4, 9] }),
          x_test: npy('|u1', [2, 2, 2], te),
          y_test: npy('|u1', [2], { values: [1, 1] }),
        },
        true,
      ),
    );
    const s = loadNpz(f, { limit: 4 });
    expect([s.train.count, s.test.count]).toEqual([4, 2]);
    expect(Array.from(s.train.labels)).toEqual([0, 1, 2, 3]);
    expect(s.classes).toHaveLength(10); // every label counts, not only the first --limit
    expect(s.mean).toHaveLength(1);
  });

  it('without y the split is flagged unlabeled: loadData refuses it unless the caller fills the labels', async () => {
    const dir = tmpDir('npz-unlabeled');
    const f = write(path.join(dir, 'x.npz'), npz({ x: npy('|u1', [5, 4, 5, 3], nhwc) }));
    await expect(loadData(`npz:${f}`, { note: () => {} })).rejects.toThrow(
      new RegExp(`^npz:${f} has no labels for its test images \\(no y \\(or y_test\\) array\\)$`),
    );
    const s = await loadData(`npz:${f}`, { allowUnlabeled: true, note: () => {} });
    expect(s.unlabeled).toBe(true);
    expect(s.classes).toEqual([]);
    expect(Array.from(s.test.labels)).toEqual([0, 0, 0, 0, 0]);
    await expect(
      loadData(`npz:${f}`, { allowUnlabeled: true, needTrain: true, note: () => {} }),
    ).rejects.toThrow(
      /has no training images \(no x_train and y_train arrays\): this command trains/,
    );
  });

  it('class names from label indices widen to a model with more classes, never fewer', () => {
    const dir = tmpDir('npz-classes');
    const f = write(
      path.join(dir, 'd.npz'),
      npz({ x: npy('|u1', [5, 4, 5, 3], nhwc), y: npy('<i4', [5], { values: labels }) }),
    );
    const s = loadNpz(f, { note: () => {} });
    expect(withClassCount(s, 10).classes).toHaveLength(10);
    expect(() => withClassCount(s, 3)).toThrow(/has label 3, but the model has 3 classes/);
  });

  it('the fingerprint is of the bytes: the same images in NHWC uint8 and NCHW float32 agree', () => {
    const dir = tmpDir('npz-fp');
    const a = loadNpz(
      write(
        path.join(dir, 'a.npz'),
        npz({ x: npy('|u1', [5, 4, 5, 3], nhwc), y: npy('|u1', [5], { values: labels }) }),
      ),
      { note: () => {} },
    );
    const b = loadNpz(
      write(
        path.join(dir, 'b.npz'),
        npz({
          x: npy('>f8', [5, 3, 4, 5], { values: Array.from(nchw, (v) => v / 255) }),
          y: npy('<u8', [5], { values: labels }),
        }),
      ),
      { note: () => {} },
    );
    expect(imageSetFingerprint(a.test)).toBe(imageSetFingerprint(b.test));
  });

  describe('refused in one line', () => {
    const dir = tmpDir('npz-bad');
    const x = npy('|u1', [5, 4, 5, 3], nhwc);
    const y = npy('|u1', [5], { values: labels });
    const cases: [string, () => Uint8Array, RegExp][] = [
      [
        'NaN pixels',
        () =>
          npz({
            x: npy('<f4', [1, 2, 2], { values: [0, NaN, 1, 0] }),
            y: npy('|u1', [1], { values: [0] }),
          }),
        /x\.npy: value NaN at index 1 \(image 0\) is outside \[0,1\]/,
      ],
      [
        '0..255 floats',
        () =>
          npz({
            x: npy('<f4', [1, 2, 2], { values: [0, 12, 255, 0] }),
            y: npy('|u1', [1], { values: [0] }),
          }),
        /value 12 at index 1 .* must be scaled to \[0,1\]/,
      ],
      [
        'negative floats (normalized images)',
        () =>
          npz({
            x: npy('<f8', [1, 2, 2], { values: [0, -0.42, 1, 0] }),
            y: npy('|u1', [1], { values: [0] }),
          }),
        /value -0\.42 at index 1/,
      ],
      [
        'int64 pixels',
        () =>
          npz({
            x: npy('<i8', [1, 2, 2], { values: [0, 1, 2, 3] }),
            y: npy('|u1', [1], { values: [0] }),
          }),
        /dtype <i8: images must be uint8 \(0\.\.255\) or float32\/float64 in \[0,1\]/,
      ],
      [
        '4 channels',
        () =>
          npz({
            x: npy('|u1', [1, 2, 2, 4], new Uint8Array(16)),
            y: npy('|u1', [1], { values: [0] }),
          }),
        /shape \(1, 2, 2, 4\) has neither 1 nor 3 channels/,
      ],
      [
        'a 2-D x',
        () => npz({ x: npy('|u1', [4, 4], new Uint8Array(16)) }),
        /shape \(4, 4\): images must be N×H×W×C/,
      ],
      [
        'float labels',
        () => npz({ x, y: npy('<f4', [5], { values: labels }) }),
        /y\.npy: dtype <f4: labels must be integers/,
      ],
      [
        'fewer labels than images',
        () => npz({ x, y: npy('|u1', [4], { values: [0, 1, 2, 3] }) }),
        /y\.npy: 4 labels for 5 images/,
      ],
      [
        'a label of 300',
        () => npz({ x, y: npy('<i4', [5], { values: [0, 1, 300, 2, 3] }) }),
        /y\.npy: label 300 at index 2 is outside 0–255/,
      ],
      [
        'a label of -1',
        () => npz({ x, y: npy('<i8', [5], { values: [0, 1, -1, 2, 3] }) }),
        /label -1 at index 2/,
      ],
      [
        'one-hot labels',
        () => npz({ x, y: npy('|u1', [5, 4], new Uint8Array(20)) }),
        /shape \(5, 4\): labels must be one integer per image/,
      ],
      [
        'no x',
        () => npz({ images: x, y }),
        /no array x \(or x_test\) among its members \(images\.npy, y\.npy\)/,
      ],
      ['x and x_test', () => npz({ x, x_test: x }), /holds both x and x_test/],
      [
        'x_train without y_train',
        () => npz({ x_test: x, y_test: y, x_train: x }),
        /holds x_train but no y_train/,
      ],
      [
        'a truncated member',
        () => npz({ x: x.subarray(0, x.length - 7), y }),
        /x\.npy: the header says shape \(5, 4, 5, 3\) of \|u1, 300 bytes, but 293 bytes follow it \(truncated\)/,
      ],
      [
        'a truncated file',
        () => npz({ x, y }, true).subarray(0, 150),
        /not a readable \.npz \(zip\) file/,
      ],
      ['not a zip at all', () => Buffer.from('x,y\n1,2\n'), /not a readable \.npz \(zip\) file/],
      ['an .npy named .npz', () => x, /not a readable \.npz \(zip\) file/],
      [
        'a member twice',
        () => {
          const parts: Uint8Array[] = [];
          const zip = new Zip((e, chunk) => parts.push(chunk));
          for (const [name, data] of [
            ['x.npy', x],
            ['y.npy', y],
            ['x.npy', x],
          ] as const) {
            const member = new ZipPassThrough(name);
            zip.add(member);
            member.push(data, true);
          }
          zip.end();
          return Buffer.concat(parts);
        },
        /holds x\.npy twice: which one is meant is ambiguous/,
      ],
      [
        'a member claiming more than deflate can give',
        () => {
          const z = Buffer.from(npz({ x, y }, true));
          // the central directory's uncompressed size of the first member: 4 GB from a few hundred bytes
          const cd = z.lastIndexOf(
            Buffer.from([0x50, 0x4b, 0x01, 0x02]),
            z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])) - 1,
          );
          z.writeUInt32LE(0xfffffff0, cd + 24);
          return z;
        },
        /claims 4294967280 bytes from \d+ compressed: more than deflate can produce/,
      ],
    ];
    for (const [what, make, message] of cases) {
      it(what, () => {
        const f = write(path.join(dir, `${what.replace(/\W+/g, '_')}.npz`), make());
        const m = refusal(() => loadNpz(f, { note: () => {} }));
        expect(m.startsWith(f)).toBe(true);
        expect(m).toMatch(message);
      });
    }
  });
});

describe('npy:X.npy[,Y.npy]', () => {
  it('images and labels from two files; images alone are unlabeled', async () => {
    const dir = tmpDir('npy-pair');
    const { nchw, nhwc } = images(3, 2, 5, 3);
    const xf = write(
      path.join(dir, 'x.npy'),
      npy('<f4', [3, 3, 2, 5], { values: Array.from(nchw, (v) => v / 255) }),
    );
    const yf = write(path.join(dir, 'y.npy'), npy('>i8', [3, 1], { values: [2, 0, 1] }));
    const s = loadNpyFiles(xf, yf, { note: () => {} });
    expect(s.name).toBe(`npy:${xf},${yf}`);
    expect(Buffer.from(s.test.images).equals(Buffer.from(nhwc))).toBe(true);
    expect(Array.from(s.test.labels)).toEqual([2, 0, 1]);
    const rel = path.relative(process.cwd(), xf);
    const u = await loadData(`npy:${rel}`, { allowUnlabeled: true, note: () => {} });
    expect(u.name).toBe(`npy:${xf}`);
    expect(u.unlabeled).toBe(true);
  });

  it('specs: a missing path or a third file is refused', () => {
    expect(parseDataSpec('npy:a.npy,b.npy')).toEqual({ kind: 'npy', x: 'a.npy', y: 'b.npy' });
    expect(() => parseDataSpec('npz:')).toThrow(/give a path after 'npz:'/);
    expect(() => parseDataSpec('npy:a,b,c')).toThrow(/npy:X\.npy or npy:X\.npy,Y\.npy/);
    expect(() => parseDataSpec('imagenet')).toThrow(
      /unknown data set 'imagenet': choose one of .*folder:PATH, npz:FILE, npy:X\.npy\[,Y\.npy\]/,
    );
  });
});

describe.skipIf(missing(HAS_NUMPY))('numpy cross-check (Debian python3-numpy)', () => {
  it('an .npz numpy writes (savez and savez_compressed; uint8 NHWC, float32 NCHW, int64 labels) loads to the bytes numpy computes', () => {
    const dir = tmpDir('npz-numpy');
    const script = `
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(7)
x = rng.integers(0, 256, size=(6, 5, 4, 3), dtype=np.uint8)
y = rng.integers(0, 10, size=6).astype(np.int64)
np.savez(d + '/u8.npz', x=x, y=y)
np.savez_compressed(d + '/f32.npz', x=(x.transpose(0, 3, 1, 2) / 255).astype(np.float32), y=y.astype('>i2'))
np.savez_compressed(d + '/keras.npz', x_train=x[:4, :, :, 0], y_train=y[:4].astype(np.uint8), x_test=x[4:, :, :, 0], y_test=y[4:])
np.save(d + '/x64.npy', np.ascontiguousarray(x / 255.0))
sys.stdout.buffer.write(x.tobytes() + y.astype(np.uint8).tobytes())
`;
    const out = python(script.replace('sys.argv[1]', JSON.stringify(dir)));
    const x = out.subarray(0, 6 * 5 * 4 * 3);
    const y = Array.from(out.subarray(x.length));
    for (const f of ['u8.npz', 'f32.npz']) {
      const s = loadNpz(path.join(dir, f), { note: () => {} });
      expect(Buffer.from(s.test.images).equals(x), f).toBe(true);
      expect(Array.from(s.test.labels)).toEqual(y);
    }
    const k = loadNpz(path.join(dir, 'keras.npz'), { note: () => {} });
    expect([k.train.count, k.test.count, k.test.channels]).toEqual([4, 2, 1]);
    expect(Array.from(k.test.images)).toEqual(
      Array.from({ length: 2 * 20 }, (_, i) => x[(4 * 20 + i) * 3]),
    );
    const n = loadNpyFiles(path.join(dir, 'x64.npy'), undefined, { note: () => {} });
    expect(Buffer.from(n.test.images).equals(x)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'u8.npz'))).toBe(true);
  });
});
