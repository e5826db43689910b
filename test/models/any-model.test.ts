/** Any LayersModel robust did not build: every built-in layer class, logits found, preprocessing declared. */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { checkLogits, loadAnyModel } from '../../models/any-model.js';
import { readModelFiles } from '../../models/model-files.js';
import { expectNoLeak, tmpDir } from '../helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const L = tf.layers;

async function saved(name: string, model: tf.LayersModel): Promise<string> {
  const dir = path.join(tmpDir(name), 'model');
  await saveCheckpoint(dir, model);
  return dir;
}

function images(n: number, h: number, w: number, c: number, seed = 1): tf.Tensor4D {
  return tf.randomUniform([n, h, w, c], 0, 1, 'float32', seed) as tf.Tensor4D;
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);

/** A Sequential net over most built-in image layer classes, ending in Dense(softmax). */
function sequentialNet(): tf.Sequential {
  return tf.sequential({
    layers: [
      L.zeroPadding2d({ inputShape: [12, 12, 3], padding: 1 }),
      L.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', seed: 1 } as never),
      L.batchNormalization(),
      L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }),
      L.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'elu' }),
      L.maxPooling2d({ poolSize: 2 }),
      L.averagePooling2d({ poolSize: 2 }),
      L.layerNormalization(),
      L.flatten(),
      L.dropout({ rate: 0.3 }),
      L.dense({ units: 5, activation: 'softmax' }),
    ],
  });
}

describe('loadAnyModel on LayersModels robust did not build', () => {
  it('a Sequential with a softmax head is attacked on the pre-softmax logits, run as stored', async () => {
    const net = sequentialNet();
    const dir = await saved('seq', net);
    const m = await loadAnyModel(dir, { note: () => {} });
    expect(m.kind).toBe('layers');
    expect(m.logits).toBe('softmax-input');
    expect(m.numClasses).toBe(5);
    expect(m.inputShape).toEqual([12, 12, 3]);
    const x = images(6, 12, 12, 3);
    const z = m.classifier.logits(x, 'inference');
    const p = net.predict(x) as tf.Tensor;
    expect(maxDiff(tf.softmax(z), p)).toBeLessThan(1e-5);
    // logits, not probabilities: rows do not sum to one
    expect(Math.abs(z.sum(1).dataSync()[0] - 1)).toBeGreaterThan(1e-3);
    expect(m.input).toMatch(/logits: the input of softmax in layer dense/);
    tf.dispose([x, z, p]);
    m.dispose();
    net.dispose();
  });

  it('a functional net (Rescaling, Add, Concatenate, Multiply, Reshape, GlobalAveragePooling, final Activation softmax)', async () => {
    const input = tf.input({ shape: [8, 8, 1] });
    const r = L.rescaling({ scale: 2, offset: -1 }).apply(input) as tf.SymbolicTensor;
    const a = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(
      r,
    ) as tf.SymbolicTensor;
    const b = L.conv2d({ filters: 3, kernelSize: 1 }).apply(r) as tf.SymbolicTensor;
    const sum = L.add().apply([a, b]) as tf.SymbolicTensor;
    const prod = L.multiply().apply([a, b]) as tf.SymbolicTensor;
    const cat = L.concatenate().apply([sum, prod]) as tf.SymbolicTensor;
    const pooled = L.globalAveragePooling2d({}).apply(cat) as tf.SymbolicTensor;
    const shaped = L.reshape({ targetShape: [6] }).apply(pooled) as tf.SymbolicTensor;
    const dense = L.dense({ units: 4 }).apply(shaped) as tf.SymbolicTensor;
    const out = L.activation({ activation: 'softmax' }).apply(dense) as tf.SymbolicTensor;
    const net = tf.model({ inputs: input, outputs: out });
    const m = await loadAnyModel(await saved('fn', net), { note: () => {} });
    expect(m.logits).toBe('softmax-input');
    const x = images(3, 8, 8, 1);
    const z = m.classifier.logits(x, 'inference');
    const p = net.predict(x) as tf.Tensor;
    expect(maxDiff(tf.softmax(z), p)).toBeLessThan(1e-5);
    tf.dispose([x, z, p]);
    m.dispose();
    net.dispose();
  });

  it('a one-unit sigmoid head becomes two-class logits [0, z]', async () => {
    const net = tf.sequential({
      layers: [L.flatten({ inputShape: [4, 4, 1] }), L.dense({ units: 1, activation: 'sigmoid' })],
    });
    const m = await loadAnyModel(await saved('sig', net), { note: () => {} });
    expect(m.numClasses).toBe(2);
    const x = images(5, 4, 4, 1);
    const z = m.classifier.logits(x, 'inference');
    const p = net.predict(x) as tf.Tensor;
    expect(maxDiff(tf.softmax(z).slice([0, 1], [-1, 1]), p)).toBeLessThan(1e-6);
    tf.dispose([x, z, p]);
    m.dispose();
    net.dispose();
  });

  it('declared preprocessing: [0,1] pixels are scaled and normalized before the model, differentiably', async () => {
    const net = tf.sequential({
      layers: [L.flatten({ inputShape: [2, 2, 3] }), L.dense({ units: 3 })],
    });
    const mean = [120, 110, 100];
    const std = [60, 50, 40];
    const m = await loadAnyModel(await saved('pre', net), {
      preprocess: { range: [0, 255], mean, std },
      note: () => {},
    });
    expect(m.input).toBe(
      "inputs in [0,255], mean 120,110,100, std 60,50,40; logits: the model's outputs",
    );
    const x = images(4, 2, 2, 3);
    const z = m.classifier.logits(x, 'inference');
    const want = net.predict(x.mul(255).sub(tf.tensor1d(mean)).div(tf.tensor1d(std))) as tf.Tensor;
    expect(maxDiff(z, want)).toBeLessThan(1e-4);
    const g = tf.grad((v: tf.Tensor) => m.classifier.logits(v as tf.Tensor4D, 'inference').sum())(
      x,
    );
    expect(g.abs().max().dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, z, want, g]);
    m.dispose();
    net.dispose();
  });

  it("the fingerprint is the files' hash as stored, and changes with preprocessing and --output", async () => {
    const net = sequentialNet();
    const dir = await saved('fp', net);
    const sha = readModelFiles(dir).sha256;
    const quiet = { note: () => {} };
    const plainHead = tf.sequential({
      layers: [L.flatten({ inputShape: [2, 2, 1] }), L.dense({ units: 3, name: 'head' })],
    });
    const plainDir = await saved('fp-plain', plainHead);
    const plain = await loadAnyModel(plainDir, quiet);
    expect(plain.fingerprint).toBe(readModelFiles(plainDir).sha256);
    const keys = new Set<string>();
    for (const o of [
      {},
      { preprocess: { range: [0, 255] as [number, number] } },
      { preprocess: { range: [0, 1] as [number, number], mean: [0.5] } },
      { output: net.layers[8].name },
    ]) {
      const m = await loadAnyModel(dir, { ...o, ...quiet });
      keys.add(m.fingerprint);
      expect(m.fingerprint).not.toBe(sha); // the softmax head is cut off: not the files' function
      m.dispose();
    }
    expect(keys.size).toBe(4);
    plain.dispose();
    net.dispose();
    plainHead.dispose();
  });

  it('--output names the logits layer; an unknown name, a multi-label sigmoid and a Lambda layer are refused in one line', async () => {
    const net = tf.sequential({
      layers: [
        L.flatten({ inputShape: [3, 3, 1] }),
        L.dense({ units: 4, name: 'feat' }),
        L.dense({ units: 3, activation: 'sigmoid', name: 'out' }),
      ],
    });
    const dir = await saved('out', net);
    const quiet = { note: () => {} };
    const m = await loadAnyModel(dir, { output: 'feat', ...quiet });
    expect(m.numClasses).toBe(4);
    m.dispose();
    await expect(loadAnyModel(dir, { output: 'nope', ...quiet })).rejects.toThrow(
      /no layer named 'nope'/,
    );
    await expect(loadAnyModel(dir, quiet)).rejects.toThrow(/3-unit sigmoid \(multi-label/);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    json.modelTopology.config.layers[1].class_name = 'Lambda';
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    await expect(loadAnyModel(dir, quiet)).rejects.toThrow(
      /layer class Lambda is not a built-in TF.js layer/,
    );
    net.dispose();
  });

  it('a Keras 3 model.json (dict inbound nodes) is refused by name, before tfjs sees it', async () => {
    const input = tf.input({ shape: [2, 2, 1] });
    const out = L.dense({ units: 2 }).apply(L.flatten().apply(input)) as tf.SymbolicTensor;
    const net = tf.model({ inputs: input, outputs: out });
    const dir = await saved('k3', net);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    json.modelTopology.config.layers[1].inbound_nodes = [{ args: [], kwargs: {} }];
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    await expect(loadAnyModel(dir, { note: () => {} })).rejects.toThrow(/Keras 3 format/);
    net.dispose();
  });

  it('probabilities without a final softmax to take logits from are refused, never attacked silently', async () => {
    const net = tf.sequential({
      layers: [
        L.flatten({ inputShape: [3, 3, 1] }),
        L.dense({ units: 4, activation: 'softmax' }),
        L.reshape({ targetShape: [4] }),
      ],
    });
    const m = await loadAnyModel(await saved('prob', net), { note: () => {} });
    expect(m.logits).toBe('outputs');
    const x = images(4, 3, 3, 1);
    expect(() => checkLogits(m, x)).toThrow(
      /the outputs are probabilities .* name the logits with output$/,
    );
    x.dispose();
    m.dispose();
    net.dispose();
  });

  it('refused in one line (hostile review): a softmax over another axis, preprocessing float32 cannot hold, an --output that is probabilities', async () => {
    const odd = tf.sequential({
      layers: [
        L.flatten({ inputShape: [2, 2, 1] }),
        L.dense({ units: 6 }),
        L.reshape({ targetShape: [3, 2] }),
        L.softmax({ axis: 1 }),
        L.flatten(),
      ],
    });
    await expect(loadAnyModel(await saved('axis', odd), { note: () => {} })).rejects.toThrow(
      /does not run in TF.js on this backend \(Softmax along a non-last dimension/,
    );
    const net = tf.sequential({
      layers: [
        L.flatten({ inputShape: [2, 2, 1] }),
        L.dense({ units: 3, activation: 'softmax', name: 'probs' }),
      ],
    });
    const dir = await saved('f32', net);
    for (const preprocess of [
      { range: [0, 1e39] },
      { range: [0, 255], std: [1e-40] },
      { range: [0, 1], mean: [NaN] },
      { range: [1, 0] },
      { range: [0, 1], std: [-1] },
    ] as const) {
      await expect(
        loadAnyModel(dir, { preprocess: preprocess as never, note: () => {} }),
        JSON.stringify(preprocess),
      ).rejects.toThrow(/float32's range|lo < hi|positive/);
    }
    const named = await loadAnyModel(dir, { output: 'probs', note: () => {} });
    const x = images(3, 2, 2, 1);
    expect(() => checkLogits(named, x)).toThrow(/the output named gives probabilities/);
    x.dispose();
    named.dispose();
    net.dispose();
    odd.dispose();
  });

  it('no tensors leak across repeated forward and gradient passes', async () => {
    const net = sequentialNet();
    const m = await loadAnyModel(await saved('mem', net), {
      preprocess: { range: [-1, 1] },
      note: () => {},
    });
    const x = images(4, 12, 12, 3);
    const pass = () =>
      tf.tidy(() =>
        tf
          .grad((v: tf.Tensor) => m.classifier.logits(v as tf.Tensor4D, 'inference').sum())(x)
          .sum()
          .dataSync(),
      );
    expectNoLeak(() => void pass(), 3);
    x.dispose();
    m.dispose();
    net.dispose();
  });
});
