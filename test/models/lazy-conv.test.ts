/** The lazy-gradient Conv2D: same numbers as the stock layer, no filter gradient in input gradients, stock files. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { LazyConv2D, lazyConv2d } from '../../models/lazy-conv.js';
import { createModel } from '../../models/zoo.js';
import { loadModel, saveCheckpoint } from '../../models/checkpoint.js';
import { tmpDir } from '../helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

function pair() {
  const args = {
    filters: 6,
    kernelSize: 3,
    strides: 2,
    padding: 'same' as const,
    useBias: true,
    activation: 'relu' as const,
  };
  const build = (conv: (a: typeof args) => tf.layers.Layer) => {
    const input = tf.input({ shape: [9, 9, 3] });
    const h = conv(args).apply(input) as tf.SymbolicTensor;
    return tf.model({
      inputs: input,
      outputs: tf.layers
        .dense({ units: 4 })
        .apply(tf.layers.flatten().apply(h)) as tf.SymbolicTensor,
    });
  };
  const stock = build((a) => tf.layers.conv2d(a));
  const lazy = build((a) => lazyConv2d(a));
  lazy.setWeights(stock.getWeights());
  return { stock, lazy };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-3 + Math.abs(b[i])));
  return worst;
};

describe('LazyConv2D', () => {
  it("gives the stock layer's outputs, input gradients and weight gradients", () => {
    const { stock, lazy } = pair();
    const x = tf.randomUniform([5, 9, 9, 3], 0, 1, 'float32', 3);
    const loss = (m: tf.LayersModel) => (xi: tf.Tensor) =>
      (m.apply(xi, { training: true }) as tf.Tensor).square().sum() as tf.Scalar;
    expect(
      close((lazy.predict(x) as tf.Tensor).dataSync(), (stock.predict(x) as tf.Tensor).dataSync()),
    ).toBeLessThan(1e-5);
    expect(
      close(tf.grad(loss(lazy))(x).dataSync(), tf.grad(loss(stock))(x).dataSync()),
    ).toBeLessThan(1e-4);
    const wl = tf.variableGrads(
      () => loss(lazy)(x),
      lazy.trainableWeights.map((v) => v.read() as tf.Variable),
    ).grads;
    const ws = tf.variableGrads(
      () => loss(stock)(x),
      stock.trainableWeights.map((v) => v.read() as tf.Variable),
    ).grads;
    const lv = Object.values(wl);
    const sv = Object.values(ws);
    expect(lv).toHaveLength(4);
    lv.forEach((g, i) => expect(close(g.dataSync(), sv[i].dataSync())).toBeLessThan(1e-4));
  });

  it('an input gradient through a zoo ResNet runs no filter-gradient kernel', async () => {
    const model = createModel('resnet20', {
      inputShape: [16, 16, 3],
      numClasses: 10,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      width: 4,
    });
    const x = tf.randomUniform([2, 16, 16, 3]);
    const info = await tf.profile(() =>
      tf.grad((xi: tf.Tensor) => (model.apply(xi, { training: false }) as tf.Tensor).sum())(x),
    );
    const names = info.kernels.map((k) => k.name);
    expect(names).toContain('Conv2DBackpropInput');
    expect(names).not.toContain('Conv2DBackpropFilter');
    model.dispose();
  });

  it('checkpoints say Conv2D (stock TF.js files) and load back as LazyConv2D', async () => {
    const model = createModel('resnet20', {
      inputShape: [16, 16, 3],
      numClasses: 10,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      width: 4,
    });
    const dir = path.join(tmpDir('lazy'), 'ckpt');
    await saveCheckpoint(dir, model);
    const json = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    expect(json).toMatch(/"class_name":"Conv2D"/);
    const loaded = await loadModel(dir);
    const convs = loaded.layers.filter((l) => l.getClassName() === 'Conv2D');
    expect(convs.length).toBe(21);
    expect(convs.every((l) => l instanceof LazyConv2D)).toBe(true);
  });
});
