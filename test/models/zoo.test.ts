import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { ZOO, countParams, createModel } from '../../models/zoo.js';
import { loadModel, saveCheckpoint } from '../../models/checkpoint.js';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers.js';

// Parameter counts of the reference PyTorch definitions for 10 classes.
const EXPECTED: Record<string, number> = {
  resnet18: 11173962,
  resnet34: 21282122,
  resnet50: 23520842,
  resnet101: 42512970,
  resnet152: 58156618,
  resnet20: 272474,
  resnet32: 466906,
  resnet44: 661338,
  resnet56: 855770,
  resnet110: 1730714,
  'preact-resnet18': 11172170,
};

const cifar = {
  inputShape: [32, 32, 3] as [number, number, number],
  numClasses: 10,
  mean: [0.49, 0.48, 0.45],
  std: [0.25, 0.24, 0.26],
};

describe('model zoo', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('zeroWeights builds the same variables as the seeded build, all zero', () => {
    const seeded = createModel('resnet20', { ...cifar, seed: 3 });
    const zero = createModel('resnet20', { ...cifar, seed: 3, zeroWeights: true });
    const shapes = (m: tf.LayersModel) => m.weights.map((w) => `${w.originalName} ${w.shape}`);
    expect(shapes(zero)).toEqual(shapes(seeded));
    const kernels = zero.weights.filter((w) => w.originalName.endsWith('kernel'));
    expect(kernels.length).toBeGreaterThan(20);
    for (const w of kernels) expect(tf.tidy(() => w.read().abs().max().dataSync()[0])).toBe(0);
    expect(tf.tidy(() => seeded.weights[0].read().abs().max().dataSync()[0])).toBeGreaterThan(0);
    seeded.dispose();
    zero.dispose();
  });

  it('has all 11 architectures', () => {
    expect(ZOO.map((e) => e.name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, params] of Object.entries(EXPECTED)) {
    it(`${name} has ${params.toLocaleString('en-US')} parameters and maps [0,1] images to 10 logits`, () => {
      // Zero weights: the shapes are what is counted, and the zoo's 170 M random draws cost ~10 s.
      const m = createModel(name, { ...cifar, zeroWeights: true });
      expect(countParams(m)).toBe(params);
      const out = tf.tidy(() => (m.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor).shape);
      expect(out).toEqual([2, 10]);
      m.dispose();
    });
  }

  it('normalizes inside the model: the first layer computes (x − mean) / std', () => {
    const m = createModel('resnet20', { ...cifar, width: 4 });
    const normalize = tf.model({
      inputs: m.inputs,
      outputs: m.getLayer('normalize').output as tf.SymbolicTensor,
    });
    const x = tf.randomUniform([1, 32, 32, 3]);
    const got = normalize.predict(x) as tf.Tensor;
    const want = x.sub(tf.tensor1d(cifar.mean)).div(tf.tensor1d(cifar.std));
    expect(got.sub(want).abs().max().dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, got, want]);
  });

  it('the same seed builds the same weights; --width changes the channels', () => {
    for (const seed of [0, 3]) {
      const a = createModel('resnet20', { ...cifar, seed, width: 4 });
      const b = createModel('resnet20', { ...cifar, seed, width: 4 });
      const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
      const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
      expect(wb).toEqual(wa);
    }
    const c = createModel('resnet20', { ...cifar, seed: 1, width: 4 });
    expect(Array.from(c.getWeights()[0].dataSync())).not.toEqual(
      Array.from(
        createModel('resnet20', { ...cifar, seed: 0, width: 4 })
          .getWeights()[0]
          .dataSync(),
      ),
    );
    expect(countParams(createModel('resnet20', { ...cifar, width: 8 }))).toBeLessThan(272474 / 3);
  });

  it('checkpoints are standard LayersModel files: tf.loadLayersModel reads them and predicts the same', async () => {
    const m = createModel('preact-resnet18', { ...cifar, width: 4 });
    const dir = path.join(tmpDir('ckpt'), 'c');
    await saveCheckpoint(dir, m);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    const x = tf.randomUniform([2, 32, 32, 3]);
    const ours = await loadModel(dir);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const stock = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: new Uint8Array(fs.readFileSync(path.join(dir, 'weights.bin'))).buffer,
      }),
    );
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    for (const loaded of [ours, stock]) {
      const out = (loaded.predict(x) as tf.Tensor).dataSync();
      expect(Array.from(out)).toEqual(Array.from(ref));
    }
  });

  it('a broken checkpoint gives a one-line RobustError', async () => {
    const dir = tmpDir('bad-ckpt');
    fs.writeFileSync(path.join(dir, 'model.json'), '{not json');
    await expect(loadModel(dir)).rejects.toThrow(/not valid JSON/);
    const m = createModel('resnet20', { ...cifar, width: 4 });
    const good = path.join(dir, 'good');
    await saveCheckpoint(good, m);
    fs.truncateSync(path.join(good, 'weights.bin'), 100);
    await expect(loadModel(good)).rejects.toThrow(/weights hold 100 bytes/);
  });

  it('refuses layer classes it does not build (e.g. a Lambda), before anything is constructed', async () => {
    const m = createModel('resnet20', { ...cifar, width: 4 });
    const dir = path.join(tmpDir('lambda-ckpt'), 'ckpt');
    await saveCheckpoint(dir, m);
    const file = path.join(dir, 'model.json');
    fs.writeFileSync(
      file,
      fs.readFileSync(file, 'utf8').replace('"class_name":"ReLU"', '"class_name":"Lambda"'),
    );
    await expect(loadModel(dir)).rejects.toThrow(
      /layer class Lambda is not a built-in TF.js layer/,
    );
  });
});
