/**
 * Every bad input gives one line naming the problem, a non-zero exit, no stack trace and no
 * output file. The lines printed are collected in bad-input.log (for the record).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once, robustBatch, tinyCheckpoint } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

const printed: string[] = [];
let ckpt: string;
let dataDir: string;
let fmnist: string;
let cifar: string;
const brokenCkpts: Record<string, string> = {};

const idx = (magic: number, dims: number[], body: Uint8Array) => {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return zlib.gzipSync(Buffer.concat([head, body]));
};

beforeAll(async () => {
  ckpt = await tinyCheckpoint('bad-input');
  const root = tmpDir('bad-input');
  dataDir = path.join(root, 'data');
  // Fashion-MNIST folder whose test labels go out of range, and one with a wrong magic number
  fmnist = path.join(root, 'fmnist-bad-labels');
  fs.mkdirSync(fmnist);
  const imgs = idx(0x803, [2, 28, 28], new Uint8Array(2 * 784));
  fs.writeFileSync(path.join(fmnist, 'train-images-idx3-ubyte.gz'), imgs);
  fs.writeFileSync(
    path.join(fmnist, 'train-labels-idx1-ubyte.gz'),
    idx(0x801, [2], Uint8Array.from([1, 2])),
  );
  fs.writeFileSync(path.join(fmnist, 't10k-images-idx3-ubyte.gz'), imgs);
  fs.writeFileSync(
    path.join(fmnist, 't10k-labels-idx1-ubyte.gz'),
    idx(0x801, [2], Uint8Array.from([3, 42])),
  );
  const magic = path.join(root, 'fmnist-bad-magic');
  fs.cpSync(fmnist, magic, { recursive: true });
  fs.writeFileSync(
    path.join(magic, 'train-images-idx3-ubyte.gz'),
    idx(0x802, [2, 28, 28], new Uint8Array(2 * 784)),
  );
  brokenCkpts.magic = magic;
  // CIFAR-10 folder with batches cut at a record boundary (2 records), one cut inside a record
  cifar = path.join(root, 'cifar-truncated');
  fs.mkdirSync(cifar);
  for (const f of [
    'data_batch_1.bin',
    'data_batch_2.bin',
    'data_batch_3.bin',
    'data_batch_4.bin',
    'data_batch_5.bin',
    'test_batch.bin',
  ])
    fs.writeFileSync(path.join(cifar, f), new Uint8Array(3073 * 2));
  fs.writeFileSync(path.join(cifar, 'data_batch_3.bin'), new Uint8Array(3073 + 10));
  // an oversized CIFAR-10 batch and a Fashion-MNIST decompression bomb
  const big = path.join(root, 'cifar-oversized');
  fs.cpSync(cifar, big, { recursive: true });
  fs.writeFileSync(path.join(big, 'data_batch_3.bin'), new Uint8Array(3073 * 10_001));
  brokenCkpts.bigCifar = big;
  const bomb = path.join(root, 'fmnist-bomb');
  fs.cpSync(fmnist, bomb, { recursive: true });
  fs.writeFileSync(
    path.join(bomb, 'train-images-idx3-ubyte.gz'),
    zlib.gzipSync(Buffer.alloc(70 * 2 ** 20)),
  );
  brokenCkpts.bomb = bomb;
  // broken checkpoints
  const copy = (name: string, edit: (dir: string) => void) => {
    const d = path.join(root, name);
    fs.cpSync(ckpt, d, { recursive: true });
    edit(d);
    brokenCkpts[name] = d;
  };
  copy('not-json', (d) => fs.writeFileSync(path.join(d, 'model.json'), '{"modelTopology": '));
  copy('unknown-layer', (d) =>
    fs.writeFileSync(
      path.join(d, 'model.json'),
      fs
        .readFileSync(path.join(d, 'model.json'), 'utf8')
        .replace('"class_name":"Add"', '"class_name":"Lambda"'),
    ),
  );
  copy('short-weights', (d) => fs.truncateSync(path.join(d, 'weights.bin'), 1000));
  copy('wrong-shape', (d) => {
    const j = fs.readFileSync(path.join(d, 'model.json'), 'utf8');
    // same byte count, different shape: the 10-way classifier's bias declared as 2×5
    fs.writeFileSync(
      path.join(d, 'model.json'),
      j.replace(/("name":"logits\/bias","shape":)\[10\]/, '$1[2,5]'),
    );
  });
});

afterAll(() => {
  fs.writeFileSync(path.join(tmpDir('bad-input-log'), 'bad-input.log'), printed.join('\n') + '\n');
  console.log(printed.join('\n'));
});

const cases: [string, () => string[], RegExp][] = [
  ['attack --eps -1', () => ['attack', '--model', ckpt, '--eps', '-1'], /--eps must be a number/],
  ['attack --eps 8/0', () => ['attack', '--model', ckpt, '--eps', '8/0'], /--eps must be a number/],
  [
    'attack --steps 0',
    () => ['attack', '--model', ckpt, '--steps', '0'],
    /--steps must be a positive integer/,
  ],
  [
    'attack --batch-size 0',
    () => ['attack', '--model', ckpt, '--batch-size', '0'],
    /--batch-size must be a positive integer/,
  ],
  [
    'attack --attack cw',
    () => ['attack', '--model', ckpt, '--attack', 'cw'],
    /unknown attack 'cw'/,
  ],
  [
    'attack --backend tpu',
    () => ['attack', '--model', ckpt, '--backend', 'tpu'],
    /unknown backend 'tpu'/,
  ],
  [
    'train --model resnet7',
    () => ['train', '--model', 'resnet7', '--data', 'sample'],
    /unknown model 'resnet7'/,
  ],
  [
    'train --defense magic',
    () => ['train', '--defense', 'magic', '--data', 'sample'],
    /unknown defense 'magic'/,
  ],
  [
    'train --out /proc/… (not writable)',
    () => ['train', '--data', 'sample', '--out', '/proc/robust-run'],
    /not writable/,
  ],
  [
    'eval --out /proc/… (not writable)',
    () => ['eval', '--models', ckpt, '--out', '/proc/robust-results'],
    /not writable/,
  ],
  ['model.json not JSON', () => ['attack', '--model', brokenCkpts['not-json']], /not valid JSON/],
  [
    'unknown layer class',
    () => ['attack', '--model', brokenCkpts['unknown-layer']],
    /layer class Lambda is not a built-in TF.js layer/,
  ],
  [
    'weights too short',
    () => ['attack', '--model', brokenCkpts['short-weights']],
    /weights hold 1000 bytes/,
  ],
  [
    'weights of the wrong shape',
    () => ['attack', '--model', brokenCkpts['wrong-shape']],
    /cannot build the model|shape/,
  ],
  ['missing checkpoint', () => ['attack', '--model', '/nonexistent/ckpt'], /no such file/],
  [
    'CIFAR-10 batch truncated',
    () => ['data', 'cifar10', '--from', cifar, '--data-dir', dataDir],
    /data_batch_1\.bin: 6146 bytes, but a CIFAR-10 batch file is 30730000 bytes .*truncated/,
  ],
  [
    'IDX labels out of range',
    () => ['data', 'fashion-mnist', '--from', fmnist, '--data-dir', dataDir],
    /label 42/,
  ],
  [
    'CIFAR-10 batch oversized',
    () => ['data', 'cifar10', '--from', brokenCkpts.bigCifar, '--data-dir', dataDir],
    /more than a CIFAR-10 batch/,
  ],
  [
    'IDX .gz that unpacks to 70 MB',
    () => ['data', 'fashion-mnist', '--from', brokenCkpts.bomb, '--data-dir', dataDir],
    /larger than any Fashion-MNIST file/,
  ],
  [
    'IDX wrong magic number',
    () => ['data', 'fashion-mnist', '--from', brokenCkpts.magic, '--data-dir', dataDir],
    /wrong IDX magic/,
  ],
  [
    'data set not prepared',
    () => [
      'attack',
      '--model',
      ckpt,
      '--data',
      'cifar10',
      '--data-dir',
      path.join(dataDir, 'empty'),
    ],
    /fetch it first with `robust data cifar10` \(--from FILE/,
  ],
];

describe('bad input: one line, non-zero exit, nothing written', () => {
  // All in one process (robustBatch), which counts the entries in dataDir around each command.
  const runs = once(() =>
    robustBatch(
      cases.map(([, args]) => {
        const a = args();
        return {
          args: a[0] === 'data' || a.includes('--backend') ? a : [...a, '--backend', 'wasm'],
          watch: [dataDir],
        };
      }),
    ),
  );
  for (const [i, [what, , message]] of cases.entries()) {
    it(what, () => {
      const r = runs()[i];
      const [before, after] = r.watched;
      const line = r.stderr.trim();
      printed.push(`${what}: exit ${r.code}: ${line}`);
      expect(r.code).not.toBe(0);
      expect(line).toMatch(message);
      expect(line.split('\n')).toHaveLength(1);
      expect(line).not.toMatch(/\bat .*\.js:\d+/);
      expect(r.stdout).toBe('');
      expect(after).toEqual(before);
    });
  }
});
