/** `--data folder:…|npz:…|npy:…` through the command line (child processes on the built package). */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadData } from '../../data/index.js';
import type { ImageSet } from '../../data/dataset.js';
import { tmpDir } from '../helpers.js';
import { npy, npz, png } from '../data/fixtures.js';
import { once, robust, robustBatch, tinyCheckpoint } from './fixtures.js';

let ckpt: string;
let sample: ImageSet;
let dir: string;
/** The bundled sample's first 20 test images as an npz (N×H×W uint8, int64 labels). */
let npzFile: string;

beforeAll(async () => {
  ckpt = await tinyCheckpoint('cli-data-sources');
  sample = (await loadData('sample', { testLimit: 20, limit: 1 })).test;
  dir = tmpDir('cli-data-sources');
  npzFile = path.join(dir, 'sample20.npz');
  fs.writeFileSync(
    npzFile,
    npz(
      {
        x: npy('|u1', [20, 28, 28], sample.images),
        y: npy('<i8', [20], { values: Array.from(sample.labels) }),
      },
      true,
    ),
  );
});

const run = (args: string[]) => robust([...args, '--backend', 'wasm']);

describe('--data with users’ files', () => {
  it('attack --data npz: gives the numbers of the same images from the built-in set', () => {
    const args = [
      'attack',
      '--fgsm',
      '--model',
      ckpt,
      '--limit',
      '20',
      '--eps',
      '0.1',
      '--json',
      '--quiet',
    ];
    const ours = run([...args, '--data', `npz:${npzFile}`]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stderr).toBe('');
    const builtin = JSON.parse(run(args).stdout);
    const j = JSON.parse(ours.stdout);
    expect(j.data).toBe(`npz:${npzFile}`);
    for (const k of ['n', 'clean_acc', 'robust_acc', 'linf_max']) expect(j[k], k).toBe(builtin[k]);
  });

  it('eval --data folder: (class folders c0..c9): the images’ fingerprint equals that of the same bytes from the npz', () => {
    const root = path.join(dir, 'folder');
    // one class folder per label, image files numbered so ImageFolder's order is label, then index
    const order: number[] = [];
    for (let c = 0; c < 10; c++) {
      for (let i = 0; i < 20; i++) {
        if (sample.labels[i] !== c) continue;
        fs.mkdirSync(path.join(root, `c${c}`), { recursive: true });
        fs.writeFileSync(
          path.join(root, `c${c}`, `${String(i).padStart(2, '0')}.png`),
          png(28, 28, 1, sample.images.subarray(i * 784, (i + 1) * 784)),
        );
        order.push(i);
      }
    }
    expect(new Set(Array.from(sample.labels)).size).toBe(10); // the first 20 test images hold every class
    const out = path.join(dir, 'eval-folder');
    const r = run([
      'eval',
      '--models',
      ckpt,
      '--attacks',
      'fgsm',
      '--eps',
      '0,0.1',
      '--data',
      `folder:${root}`,
      '--out',
      out,
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const fromFolder = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    // the npz with the images in the folder's order holds the same bytes
    const reordered = path.join(dir, 'reordered.npz');
    const images = new Uint8Array(20 * 784);
    order.forEach((i, k) => images.set(sample.images.subarray(i * 784, (i + 1) * 784), k * 784));
    fs.writeFileSync(
      reordered,
      npz({
        x: npy('|u1', [20, 28, 28, 1], images),
        y: npy('|u1', [20], { values: order.map((i) => sample.labels[i]) }),
      }),
    );
    const out2 = path.join(dir, 'eval-npz');
    expect(
      run([
        'eval',
        '--models',
        ckpt,
        '--attacks',
        'fgsm',
        '--eps',
        '0,0.1',
        '--data',
        `npz:${reordered}`,
        '--out',
        out2,
        '--quiet',
      ]).code,
    ).toBe(0);
    const fromNpz = JSON.parse(fs.readFileSync(path.join(out2, 'results.json'), 'utf8'));
    expect(fromFolder.models[0].data_sha256).toBe(fromNpz.models[0].data_sha256);
    expect(
      fromFolder.cells.map((c: { stats: { robust_acc: number } }) => c.stats.robust_acc),
    ).toEqual(fromNpz.cells.map((c: { stats: { robust_acc: number } }) => c.stats.robust_acc));
  });

  it('robust data SPEC checks a source and says what it holds', () => {
    const r = robust(['data', `npz:${npzFile}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(
      new RegExp(
        `^npz:${npzFile}: 0 train / 20 test images of 28×28×1, \\d+ classes \\(label indices, no names\\)$`,
      ),
    );
    expect(r.stderr.trim()).toBe('');
    expect(robust(['data', `npz:${npzFile}`, '--from', 'x']).stderr.trim()).toBe(
      `robust: --from is for the built-in data sets; npz:${npzFile} is read where it is`,
    );
  });

  const refusals: [string, () => string[], RegExp][] = [
    [
      'an unlabeled npz',
      () => {
        const f = path.join(dir, 'unlabeled.npz');
        fs.writeFileSync(f, npz({ x: npy('|u1', [20, 28, 28], sample.images) }));
        return ['attack', '--fgsm', '--model', ckpt, '--data', `npz:${f}`];
      },
      /^robust: npz:.*unlabeled\.npz has no labels for its test images \(no y \(or y_test\) array\)$/,
    ],
    [
      'training on a source without a training split',
      () => ['train', '--data', `npz:${npzFile}`, '--epochs', '1', '--out', path.join(dir, 'run')],
      /^robust: npz:.* has no training images \(no x_train and y_train arrays\): this command trains, so it needs them$/,
    ],
    [
      'a missing file',
      () => ['attack', '--fgsm', '--model', ckpt, '--data', `npz:${path.join(dir, 'nope.npz')}`],
      /^robust: .*nope\.npz: no such file$/,
    ],
  ];
  it('images of another size and channel count than the model’s are fitted to it, with a note and in the JSON', () => {
    const root = path.join(dir, 'rgb32');
    for (const c of 'abcdefghij') {
      fs.mkdirSync(path.join(root, c), { recursive: true });
      fs.writeFileSync(
        path.join(root, c, '1.png'),
        png(32, 32, 3, new Uint8Array(32 * 32 * 3).fill(c.charCodeAt(0))),
      );
    }
    const r = run(['attack', '--fgsm', '--model', ckpt, '--data', `folder:${root}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /note: folder:.*rgb32's test images fitted to the model's input: 32×32×3 → 28×28×1: resized 32×32 → 28×28 .*RGB → gray/,
    );
    expect(JSON.parse(r.stdout).images).toMatch(/^32×32×3 → 28×28×1/);
  });

  // One process for the three (robustBatch): they are about the line and the exit code.
  const refusalRuns = once(() =>
    robustBatch(refusals.map(([, args]) => ({ args: [...args(), '--backend', 'wasm'] }))),
  );
  for (const [i, [what, , message]] of refusals.entries()) {
    it(`refused in one line: ${what}`, () => {
      const r = refusalRuns()[i];
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  }
});
