import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { loadModel, saveCheckpoint } from '../../models/checkpoint.js';

// zoo-add only moves files and writes zoo/index.json, so a fake run and a scratch zoo
// ($ROBUST_ZOO_DIR) test it without training anything. `npm test` builds dist/ first.
const ZOO_ADD = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'dist',
  'scripts',
  'zoo-add.js',
);

let root: string;
let zoo: string;
let runDir: string;
const add = (...args: string[]) =>
  spawnSync(process.execPath, [ZOO_ADD, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ROBUST_ZOO_DIR: zoo },
  });
const index = () =>
  JSON.parse(fs.readFileSync(path.join(zoo, 'index.json'), 'utf8')).entries as Array<
    Record<string, unknown>
  >;
const entry = (name: string) => ({
  name,
  architecture: 'resnet20',
  data: 'cifar10',
  defense: 'none',
  command: 'old',
  epochs: 1,
  train_seconds: 1,
  backend: 'cpu',
  test_acc: 0.1,
  sha256: {},
});

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'zoo-add-'));
  zoo = path.join(root, 'zoo');
  fs.mkdirSync(zoo);
  fs.writeFileSync(
    path.join(zoo, 'index.json'),
    JSON.stringify({ entries: [entry('first'), entry('second'), entry('third')] }),
  );
  runDir = path.join(root, 'run');
  fs.mkdirSync(path.join(runDir, 'checkpoint'), { recursive: true });
  fs.writeFileSync(
    path.join(runDir, 'checkpoint', 'state.json'),
    JSON.stringify({ config: { model: 'resnet20', data: 'cifar10', backend: 'wasm' } }),
  );
  fs.writeFileSync(
    path.join(runDir, 'checkpoint', 'model.json'),
    JSON.stringify({ modelTopology: {}, userDefinedMetadata: { robust: {} } }),
  );
  fs.writeFileSync(path.join(runDir, 'checkpoint', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
  fs.writeFileSync(
    path.join(runDir, 'log.json'),
    JSON.stringify([
      { epoch: 1, test_acc: 0.5, seconds: 10.4 },
      { epoch: 2, test_acc: 0.75, seconds: 12.3 },
    ]),
  );
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('npm run zoo:add', () => {
  it('replaces an entry in its place, with the last epoch, summed time and the files checksums', () => {
    const r = add(runDir, 'second', '--command', 'robust train --epochs 2');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const entries = index();
    expect(entries.map((e) => e.name)).toEqual(['first', 'second', 'third']);
    const e = entries[1];
    expect(e).toMatchObject({
      command: 'robust train --epochs 2',
      epochs: 2,
      test_acc: 0.75,
      train_seconds: 23,
      backend: 'wasm (2 threads)',
    });
    const weights = fs.readFileSync(path.join(zoo, 'second', 'weights.bin'));
    expect(weights).toEqual(Buffer.from([1, 2, 3, 4]));
    expect((e.sha256 as Record<string, string>)['weights.bin']).toBe(
      crypto.createHash('sha256').update(weights).digest('hex'),
    );
  });

  it('appends a new entry at the end', () => {
    expect(add(runDir, 'fourth', '--command', 'x').status).toBe(0);
    expect(index().map((e) => e.name)).toEqual(['first', 'second', 'third', 'fourth']);
  });

  for (const [what, breakRun] of [
    ['a missing run folder', () => fs.rmSync(runDir, { recursive: true })],
    ['a run with no finished epoch', () => fs.writeFileSync(path.join(runDir, 'log.json'), '[]')],
    ['a damaged log', () => fs.writeFileSync(path.join(runDir, 'log.json'), '[{"epoch": 1,')],
    ['a run without weights', () => fs.rmSync(path.join(runDir, 'checkpoint', 'weights.bin'))],
  ] as const) {
    it(`${what}: one line, exit 2, the zoo untouched`, () => {
      breakRun();
      const before = fs.readFileSync(path.join(zoo, 'index.json'), 'utf8');
      const r = add(runDir, 'second', '--command', 'x');
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^zoo-add: /);
      expect(fs.readFileSync(path.join(zoo, 'index.json'), 'utf8')).toBe(before);
      expect(fs.existsSync(path.join(zoo, 'second'))).toBe(false);
    });
  }

  describe('--float16', () => {
    /**
     * A real checkpoint on the bundled Fashion-MNIST sample (500 test images, 55 of class 0 and 52
     * of class 1): a constant classifier whose two top logits differ by `gap` above 1. A gap float16
     * keeps leaves its predictions as they are; one it rounds away ties them, and the tie goes to
     * class 0: 3 more images right, 0.6 point.
     */
    async function constantRun(gap: number, inputShape = [28, 28, 1]) {
      await initBackend({ backend: 'cpu' });
      const model = tf.sequential({
        layers: [
          tf.layers.flatten({ inputShape }),
          tf.layers.dense({ units: 10, kernelInitializer: 'zeros' }),
        ],
      });
      const bias = new Float32Array(10);
      [bias[0], bias[1]] = [1, 1 + gap];
      model.layers[1].setWeights([
        tf.zeros([inputShape.reduce((a, b) => a * b), 10]),
        tf.tensor1d(bias),
      ]);
      await saveCheckpoint(path.join(runDir, 'checkpoint'), model);
      model.dispose();
      fs.writeFileSync(
        path.join(runDir, 'checkpoint', 'state.json'),
        JSON.stringify({ config: { model: 'dense', data: 'sample', backend: 'cpu' } }),
      );
    }

    it('ships float16 weights when the clean accuracy stays, with both accuracies recorded', async () => {
      await constantRun(2 ** -9); // float16 holds 1 + 2^-9 exactly
      const r = add(runDir, 'second', '--command', 'x', '--float16');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(
        /float16 weights: 10\.40% clean on 500 test images, float32 10\.40%/,
      );
      const e = index()[1];
      expect(e.weights).toEqual({
        dtype: 'float16',
        test_acc_float32: 0.104,
        test_acc_float16: 0.104,
      });
      const json = JSON.parse(fs.readFileSync(path.join(zoo, 'second', 'model.json'), 'utf8'));
      const specs = json.weightsManifest[0].weights as { quantization?: { dtype: string } }[];
      expect(specs.map((w) => w.quantization?.dtype)).toEqual(['float16', 'float16']);
      const weights = fs.readFileSync(path.join(zoo, 'second', 'weights.bin'));
      expect(weights.length).toBe(2 * (784 * 10 + 10));
      expect((e.sha256 as Record<string, string>)['weights.bin']).toBe(
        crypto.createHash('sha256').update(weights).digest('hex'),
      );
      // the zoo loads it as any entry
      const loaded = await loadModel(path.join(zoo, 'second'));
      expect(Array.from((loaded.getWeights()[1].dataSync() as Float32Array).slice(0, 2))).toEqual([
        1,
        1 + 2 ** -9,
      ]);
      loaded.dispose();
    });

    it("refuses a model whose input is not the data set's images: one line, the zoo untouched", async () => {
      await constantRun(2 ** -9, [32, 32, 3]);
      const r = add(runDir, 'second', '--command', 'x', '--float16');
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^zoo-add: .*: the model takes 32×32×3 images, sample's are 28×28×1$/m,
      );
      expect(fs.existsSync(path.join(zoo, 'second'))).toBe(false);
    });

    it('refuses when float16 moves the clean accuracy by more than 0.1 point: one line, the zoo untouched', async () => {
      await constantRun(2 ** -20); // rounds to 1: a tie
      const before = fs.readFileSync(path.join(zoo, 'index.json'), 'utf8');
      const r = add(runDir, 'second', '--command', 'x', '--float16');
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^zoo-add: float16 weights move the clean accuracy by 3 of 500 test images \(10\.40% → 11\.00%\), more than 0\.1 point/,
      );
      expect(fs.readFileSync(path.join(zoo, 'index.json'), 'utf8')).toBe(before);
      expect(fs.existsSync(path.join(zoo, 'second'))).toBe(false);
    });
  });

  it('refuses a name that cannot be a folder and a zoo: address', () => {
    const r = add(runDir, '../escape', '--command', 'x');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^zoo-add: entry name/);
    expect(index()).toHaveLength(3);
  });
});
