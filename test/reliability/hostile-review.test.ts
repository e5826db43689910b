/**
 * What a hostile review of this round found, one case per class: outputs that replace inputs or
 * other runs, paths that are not what they look like, values that meant something else, models
 * that hang the loader. Each: one line, exit 2, nothing replaced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { once, robust, robustBatch, tinyCheckpoint } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

let ckpt: string;
let root: string;
let run: string;
let results: string;

beforeAll(async () => {
  ckpt = await tinyCheckpoint('hostile');
  root = tmpDir('hostile');
  run = path.join(root, 'kb');
  expect(
    robust([
      'train',
      '--data',
      'sample',
      '--width',
      '4',
      '--epochs',
      '1',
      '--limit',
      '32',
      '--batch-size',
      '16',
      '--out',
      run,
      '--backend',
      'wasm',
      '--quiet',
    ]).code,
  ).toBe(0);
  results = path.join(root, 'results');
  expect(
    robust([
      'eval',
      '--models',
      ckpt,
      '--attacks',
      'fgsm',
      '--eps',
      '0.1',
      '--limit',
      '8',
      '--out',
      results,
      '--backend',
      'wasm',
      '--quiet',
    ]).code,
  ).toBe(0);
  // 20,000 chained ReLUs listed last to first: a few MB that kept the loader busy for hours
  const layers = [
    {
      name: 'in',
      class_name: 'InputLayer',
      config: { batch_input_shape: [null, 28, 28, 1], dtype: 'float32', name: 'in' },
      inbound_nodes: [],
    },
  ];
  for (let i = 0; i < 20_000; i++)
    layers.push({
      name: `r${i}`,
      class_name: 'ReLU',
      config: { name: `r${i}` } as never,
      inbound_nodes: [[[i === 0 ? 'in' : `r${i - 1}`, 0, 0, {}]]] as never,
    });
  const deep = path.join(root, 'deep');
  fs.mkdirSync(deep);
  fs.writeFileSync(
    path.join(deep, 'model.json'),
    JSON.stringify({
      format: 'layers-model',
      modelTopology: {
        class_name: 'Model',
        config: {
          name: 'deep',
          layers: [layers[0], ...layers.slice(1).reverse()],
          input_layers: [['in', 0, 0]],
          output_layers: [['r19999', 0, 0]],
        },
      },
      weightsManifest: [{ paths: [], weights: [] }],
    }),
  );
});

describe('a hostile review, one case per class', () => {
  const cases: [string, () => string[], RegExp][] = [
    [
      'train --out that leads to an existing run through ..',
      () => [
        'train',
        '--data',
        'sample',
        '--width',
        '4',
        '--epochs',
        '1',
        '--limit',
        '32',
        '--seed',
        '5',
        '--out',
        path.join(root, 'nonexistent', '..', 'kb'),
      ],
      /holds|--force|--resume/,
    ],
    [
      'train --out empty',
      () => ['train', '--data', 'sample', '--out', ''],
      /--out must name a folder/,
    ],
    ['eval --out empty', () => ['eval', '--models', ckpt, '--out', ''], /--out must name a folder/],
    ['eval --out /', () => ['eval', '--models', ckpt, '--out', '/'], /file system's root/],
    [
      'export md onto its own results.json',
      () => ['export', 'md', results, '--out', path.join(results, 'results.json')],
      /would replace the results it exports from/,
    ],
    [
      'export onto a cell',
      () => ['export', 'csv', results, '--out', path.join(results, 'cells', 'x.json')],
      /would replace the results it exports from/,
    ],
    [
      'export html --out / (a folder, never renamed over)',
      () => ['export', 'html', results, '--out', '/'],
      /^robust: \/: is a folder, not a file robust may replace/,
    ],
    [
      'attack --targeted empty',
      () => ['attack', '--model', ckpt, '--targeted', ''],
      /--targeted must be random, least-likely or a class index/,
    ],
    [
      'attack --targeted 0x1',
      () => ['attack', '--model', ckpt, '--targeted', '0x1'],
      /--targeted must be random, least-likely or a class index/,
    ],
    [
      'train --defense clip --clip-norm 0',
      () => [
        'train',
        '--data',
        'sample',
        '--defense',
        'clip',
        '--clip-norm',
        '0',
        '--out',
        path.join(root, 'clip'),
      ],
      /--clip-norm must be > 0/,
    ],
    [
      'a model.json of 20,000 layers listed backwards',
      () => ['attack', '--model', path.join(root, 'deep'), '--data', 'sample', '--limit', '4'],
      /20001 layers, more than robust loads/,
    ],
  ];
  // All in one process (robustBatch), which hashes the run's weights and the results around each.
  const runs = once(() =>
    robustBatch(
      cases.map(([, args]) => {
        const a = args();
        return {
          args: a[0] === 'export' ? a : [...a, '--backend', 'wasm'],
          watch: [path.join(run, 'checkpoint', 'weights.bin'), path.join(results, 'results.json')],
        };
      }),
    ),
  );
  for (const [i, [what, , message]] of cases.entries()) {
    it(what, () => {
      const r = runs()[i];
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.ms).toBeLessThan(60_000);
      const [before, after] = r.watched;
      expect(before).not.toContain('missing');
      expect(after).toEqual(before);
    });
  }

  it('train --resume with --width equal to the width the run used by default is not a change', () => {
    const r = robust([
      'train',
      '--data',
      'sample',
      '--width',
      '4',
      '--epochs',
      '1',
      '--limit',
      '32',
      '--batch-size',
      '16',
      '--out',
      run,
      '--resume',
      '--eval-limit',
      '32',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(r.stderr).not.toMatch(/cannot change|differ/);
    expect(r.code).toBe(0);
  });

  it("two trainings into one folder: the second is refused while the first runs; a killed run's lock is taken over", async () => {
    const { spawn } = await import('node:child_process');
    const { ROOT } = await import('../helpers.js');
    const out = path.join(root, 'shared-out');
    const first = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'robust.js'),
        'train',
        '--data',
        'sample',
        '--width',
        '4',
        '--epochs',
        '3',
        '--batch-size',
        '16',
        '--out',
        out,
        '--backend',
        'wasm',
        '--quiet',
      ],
      { stdio: 'ignore' },
    );
    const lock = path.join(out, '.robust-run.lock');
    for (let i = 0; i < 200 && !fs.existsSync(lock); i++)
      await new Promise((r) => setTimeout(r, 50));
    const second = robust([
      'train',
      '--data',
      'sample',
      '--width',
      '4',
      '--epochs',
      '1',
      '--seed',
      '2',
      '--out',
      out,
      '--backend',
      'wasm',
    ]);
    first.kill('SIGKILL');
    await new Promise((r) => first.on('exit', r));
    expect(second.code).toBe(2);
    expect(second.stderr.trim()).toMatch(/is in use by another training run \(pid \d+\)/);
    // the first was killed: its lock names a dead process, so the folder can be resumed
    expect(fs.existsSync(lock)).toBe(true);
    const resumed = robust([
      'train',
      '--data',
      'sample',
      '--width',
      '4',
      '--epochs',
      '1',
      '--out',
      out,
      '--force',
      '--limit',
      '32',
      '--batch-size',
      '16',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);
  });
});
