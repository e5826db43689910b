/**
 * Issue #18 end to end on trained models robust did not build: a Sequential CNN (MaxPooling2D,
 * DepthwiseConv2D, SeparableConv2D, softmax head), a functional net with Concatenate, and a
 * GraphModel written by hand (Conv2D, BiasAdd, Relu, DepthwiseConv2dNative, MaxPool, MatMul,
 * Softmax) whose weights are those of the same ops trained as a LayersModel. Each is trained
 * briefly on real Fashion-MNIST and saved as model.json + weights; then the attacks' input gradient
 * through loadAnyModel's Classifier is checked against the cpu backend and central finite
 * differences, and PGD at eps 0.1 through `robust eval` must break each from a clean accuracy well
 * above chance.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { loadAnyModel } from '../../models/any-model.js';
import { evaluate } from '../../attacks/gradient.js';
import { objective } from '../../attacks/losses.js';
import { loadData } from '../../data/index.js';
import type { ImageSet } from '../../data/dataset.js';
import { finish, GraphBuilder } from '../fixtures/graph-models.js';
import { HAS_SHARED_FASHION, missing, relErr, SHARED_DATA, tmpDir } from '../helpers.js';
import { robust } from './fixtures.js';

if (missing(HAS_SHARED_FASHION))
  console.warn(
    `skipping the trained any-model tests: ${SHARED_DATA}/fashion-mnist is absent (it exists on CI)`,
  );

const TRAIN = 2000;
const EPOCHS = 2;
/** Test images the CLI attacks. */
const EVAL = 100;
const L = tf.layers;
const seeded = (seed: number) => ({
  kernelInitializer: tf.initializers.glorotUniform({ seed }),
});
/**
 * Fashion-MNIST's pixel mean and std: each net standardizes its input first (a Rescaling layer, as
 * Keras models carry their preprocessing; Mul and AddV2 nodes in the graph). Trained on raw [0,1]
 * pixels, or with Adam at 3e-3, nets this small and this briefly trained stayed 16–29% robust at
 * eps 0.1 even against PGD-50 (measured); standardized and at 1e-2, PGD-10 leaves 1–4%.
 */
const MEAN = 0.286;
const STD = 0.353;
const standardize = () =>
  L.rescaling({ inputShape: [28, 28, 1], scale: 1 / STD, offset: -MEAN / STD });

/** (a) Sequential: conv, depthwise, separable, max-pool, dense softmax. */
function sequentialCnn(): tf.LayersModel {
  return tf.sequential({
    layers: [
      standardize(),
      L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', ...seeded(1) }),
      L.depthwiseConv2d({
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      L.separableConv2d({
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        depthwiseInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        pointwiseInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
      L.maxPooling2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({ units: 10, activation: 'softmax', ...seeded(5) }),
    ],
  });
}

/**
 * (b) Functional: a convolution, then two branches (depthwise 3×3; pointwise 1×1) concatenated,
 * max-pooled, dense, Activation softmax. (Two plain conv branches stayed 14% robust at eps 0.1.)
 */
function functionalConcat(): tf.LayersModel {
  const input = tf.input({ shape: [28, 28, 1] });
  const x = standardize().apply(input);
  const h = L.conv2d({
    filters: 8,
    kernelSize: 3,
    padding: 'same',
    activation: 'relu',
    ...seeded(6),
  }).apply(x);
  const a = L.depthwiseConv2d({
    kernelSize: 3,
    padding: 'same',
    activation: 'relu',
    depthwiseInitializer: tf.initializers.glorotUniform({ seed: 7 }),
  }).apply(h);
  const b = L.conv2d({ filters: 4, kernelSize: 1, activation: 'relu', ...seeded(8) }).apply(h);
  const cat = L.concatenate().apply([a, b] as tf.SymbolicTensor[]);
  const pooled = L.maxPooling2d({ poolSize: 2 }).apply(cat);
  const dense = L.dense({ units: 10, ...seeded(9) }).apply(L.flatten().apply(pooled));
  const out = L.activation({ activation: 'softmax' }).apply(dense) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** (c)'s ops as a LayersModel, to train its weights: conv+bias+relu, depthwise+bias+relu, max-pool, dense. */
function graphTwin(): tf.LayersModel {
  return tf.sequential({
    layers: [
      standardize(),
      L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', ...seeded(10) }),
      L.depthwiseConv2d({
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        depthwiseInitializer: tf.initializers.glorotUniform({ seed: 11 }),
      }),
      L.maxPooling2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({ units: 10, activation: 'softmax', ...seeded(12) }),
    ],
  });
}

/**
 * (c) The twin's trained weights written into a GraphDef by hand, as tensorflowjs_converter writes
 * an unfused Keras model: Mul and AddV2 (the Rescaling), Conv2D, BiasAdd, Relu, DepthwiseConv2dNative, BiasAdd, Relu, MaxPool,
 * Reshape, MatMul, BiasAdd, Softmax.
 */
function writeGraph(twin: tf.LayersModel, dir: string): void {
  const [k1, b1, dk, db, wd, bd] = twin
    .getWeights()
    .map((w) => ({ shape: w.shape, data: w.dataSync() }));
  const g = new GraphBuilder('StatefulPartitionedCall/sequential', 0);
  const input = 'input_1';
  let h = g.placeholder(input, [-1, 28, 28, 1]);
  h = g.binary('rescaling/mul', 'Mul', h, g.constant('rescaling/Cast', [], [1 / STD]));
  h = g.binary('rescaling/add', 'AddV2', h, g.constant('rescaling/Cast_1', [], [-MEAN / STD]));
  const same = { padding: { s: Buffer.from('SAME').toString('base64') } };
  const nhwc = { data_format: { s: Buffer.from('NHWC').toString('base64') } };
  const strides = { list: { i: ['1', '1', '1', '1'] } };
  const conv = { strides, dilations: strides, ...same, ...nhwc, explicit_paddings: { list: {} } };
  h = g.op(
    'conv2d/Conv2D',
    'Conv2D',
    [h, g.constant('conv2d/Conv2D/ReadVariableOp', k1.shape, k1.data)],
    conv,
  );
  h = g.op(
    'conv2d/BiasAdd',
    'BiasAdd',
    [h, g.constant('conv2d/BiasAdd/ReadVariableOp', b1.shape, b1.data)],
    nhwc,
  );
  h = g.unary('conv2d/Relu', 'Relu', h);
  h = g.op(
    'depthwise_conv2d/depthwise',
    'DepthwiseConv2dNative',
    [h, g.constant('depthwise_conv2d/depthwise/ReadVariableOp', dk.shape, dk.data)],
    conv,
  );
  h = g.op(
    'depthwise_conv2d/BiasAdd',
    'BiasAdd',
    [h, g.constant('depthwise_conv2d/BiasAdd/ReadVariableOp', db.shape, db.data)],
    nhwc,
  );
  h = g.unary('depthwise_conv2d/Relu', 'Relu', h);
  h = g.pool('max_pooling2d', 'MaxPool', h, 2, 2, 'VALID');
  h = g.reshape('flatten', h, [-1, 14 * 14 * 8]);
  h = g.op(
    'dense/MatMul',
    'MatMul',
    [h, g.constant('dense/MatMul/ReadVariableOp', wd.shape, wd.data)],
    {
      transpose_a: { b: false },
      transpose_b: { b: false },
    },
  );
  const logits = g.op(
    'dense/BiasAdd',
    'BiasAdd',
    [h, g.constant('dense/BiasAdd/ReadVariableOp', bd.shape, bd.data)],
    nhwc,
  );
  finish(g, dir, 'hand-graph', input, [28, 28, 1], logits, 10);
}

const toX = (set: ImageSet, from: number, n: number) =>
  tf.tidy(() =>
    tf
      .tensor4d(set.images.subarray(from * 784, (from + n) * 784), [n, 28, 28, 1], 'int32')
      .toFloat()
      .div(255),
  ) as tf.Tensor4D;

let root: string;
let test: ImageSet;
const dirs = {} as Record<'sequential' | 'functional' | 'graph', string>;
/** The twin's softmax on a few test images, to check the hand-written graph computes it. */
let twinProbs: Float32Array;

beforeAll(async () => {
  if (missing(HAS_SHARED_FASHION)) return;
  await initBackend({ backend: 'wasm' });
  root = tmpDir('any-model-trained');
  const data = await loadData('fashion-mnist', { dataDir: SHARED_DATA, limit: TRAIN });
  test = data.test;
  const x = toX(data.train, 0, TRAIN);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(data.train.labels, 'int32'), 10).toFloat());
  const nets = { sequential: sequentialCnn(), functional: functionalConcat(), graph: graphTwin() };
  for (const [name, net] of Object.entries(nets)) {
    net.compile({ optimizer: tf.train.adam(1e-2), loss: 'categoricalCrossentropy' });
    // shuffle off: the file's order is already mixed, and the run is the same every time
    await net.fit(x, y, { epochs: EPOCHS, batchSize: 32, shuffle: false, verbose: 0 });
    dirs[name as keyof typeof dirs] = path.join(root, name);
  }
  await saveCheckpoint(dirs.sequential, nets.sequential);
  await saveCheckpoint(dirs.functional, nets.functional);
  writeGraph(nets.graph, dirs.graph);
  const probe = toX(test, 0, 8);
  twinProbs = tf.tidy(() => (nets.graph.predict(probe) as tf.Tensor).dataSync() as Float32Array);
  tf.dispose([x, y, probe]);
  Object.values(nets).forEach((n) => n.dispose());
}, 120_000);

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const names = ['sequential', 'functional', 'graph'] as const;
const quiet = { note: () => {} };

/** The attacks' objective (cross-entropy on the logits), its input gradient and logits, through loadAnyModel on the current backend. */
async function attackGradient(dir: string, x: tf.Tensor4D, labels: tf.Tensor1D) {
  const m = await loadAnyModel(dir, quiet);
  const setup = {
    classifier: m.classifier,
    objective: objective('ce'),
    mode: 'inference' as const,
    eotSamples: 1,
  };
  const e = evaluate(setup, x, labels);
  const out = {
    grad: e.grad.dataSync() as Float32Array,
    logits: e.logits.dataSync() as Float32Array,
  };
  tf.dispose([e.grad, e.value, e.logits]);
  /** The objective summed over the batch (in float64: the float32 sum would add its own rounding). */
  const loss = (v: tf.Tensor4D) =>
    tf.tidy(() =>
      setup
        .objective(m.classifier.logits(v, 'inference'), labels)
        .dataSync()
        .reduce((a, b) => a + b, 0),
    );
  return { ...out, loss, dispose: () => m.dispose() };
}

describe.skipIf(missing(HAS_SHARED_FASHION))(
  'trained models robust did not build (Fashion-MNIST)',
  () => {
    it('the hand-written graph computes the LayersModel it was trained as', async () => {
      const m = await loadAnyModel(dirs.graph, quiet);
      expect(m.kind).toBe('graph');
      expect(m.logits).toBe('softmax-input');
      const probe = toX(test, 0, 8);
      const p = tf.tidy(
        () => tf.softmax(m.classifier.logits(probe, 'inference')).dataSync() as Float32Array,
      );
      expect(relErr(p, twinProbs)).toBeLessThan(1e-5);
      const ops = new Set(
        JSON.parse(
          fs.readFileSync(path.join(dirs.graph, 'model.json'), 'utf8'),
        ).modelTopology.node.map((n: { op: string }) => n.op),
      );
      for (const op of [
        'Conv2D',
        'BiasAdd',
        'Relu',
        'DepthwiseConv2dNative',
        'MaxPool',
        'MatMul',
        'Softmax',
      ])
        expect(ops).toContain(op);
      probe.dispose();
      m.dispose();
    });

    for (const name of names) {
      it(`${name}: the attacks' input gradient equals the cpu backend's and central finite differences`, async () => {
        // Test images, jittered into (0, 1): the background is exactly 0, so max-pool windows there
        // hold ties, where the loss has no derivative for differences to measure. Labels other than
        // their own, so the loss and its gradient are far from zero.
        const x = tf.tidy(() =>
          toX(test, 8, 4)
            .mul(0.9)
            .add(tf.randomUniform([4, 28, 28, 1], 0.01, 0.09, 'float32', 5)),
        ) as tf.Tensor4D;
        const labels = tf.tensor1d(
          Array.from(test.labels.subarray(8, 12), (c) => (c + 3) % 10),
          'int32',
        );
        const wasm = await attackGradient(dirs[name], x, labels);
        await tf.setBackend('cpu');
        try {
          const cpu = await attackGradient(dirs[name], x, labels);
          cpu.dispose();
          // float32 summation order differs (XNNPACK, our kernels vs plain loops): relative to the
          // largest entry (measured ≤ 9.4e-7 for the logits, 2.6e-7 for the gradient)
          expect(relErr(wasm.logits, cpu.logits)).toBeLessThan(1e-5);
          expect(relErr(wasm.grad, cpu.grad)).toBeLessThan(1e-5);
        } finally {
          await tf.setBackend('wasm');
        }
        // Central differences (f(x+hd) − f(x−hd)) / 2h against <∇f, d> along unit directions d: three
        // random ones (a random direction's derivative is ~‖∇f‖/56 here) and the gradient's own.
        // h = 1e-3 in L2 over the batch: float32 noise in f (~1e-5) / 2h stays ~5e-3 ≈ 3e-4·‖∇f‖, and
        // few ReLU kinks lie within ±h (at h = 1e-2 they cost up to 6e-3·‖∇f‖). Error ≤ 2e-3·‖∇f‖
        // (measured ≤ 3.7e-4).
        const H = 1e-3;
        const g = tf.tensor(wasm.grad, x.shape);
        const gNorm = Math.hypot(...wasm.grad);
        const directions = [0, 1, 2].map((k) =>
          tf.tidy(() => {
            const r = tf.randomNormal(x.shape, 0, 1, 'float32', 100 + k);
            return r.div(r.norm());
          }),
        );
        directions.push(tf.tidy(() => g.div(gNorm)));
        const errors = directions.map((d) => {
          const exact = tf.tidy(() => g.mul(d).sum().dataSync()[0]);
          const [plus, minus] = tf.tidy(() => [x.add(d.mul(H)), x.sub(d.mul(H))] as tf.Tensor4D[]);
          const fd = (wasm.loss(plus) - wasm.loss(minus)) / (2 * H);
          tf.dispose([plus, minus]);
          return Math.abs(fd - exact) / gNorm;
        });
        expect(Math.max(...errors)).toBeLessThan(2e-3);
        expect(gNorm).toBeGreaterThan(0.1);
        tf.dispose([x, labels, g, ...directions]);
        wasm.dispose();
      });
    }

    it('robust eval: PGD at eps 0.1 takes each from well above chance to below 10% robust accuracy', () => {
      const out = path.join(root, 'results');
      const r = robust([
        'eval',
        '--models',
        names.map((n) => dirs[n]).join(','),
        '--data',
        'fashion-mnist',
        '--data-dir',
        SHARED_DATA,
        '--attacks',
        'pgd',
        '--eps',
        '0.1',
        '--limit',
        String(EVAL),
        '--out',
        out,
        '--backend',
        'wasm',
      ]);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
      for (const n of names) {
        const model = json.models.find((m: { model: string }) => m.model === dirs[n]);
        const cell = json.cells.find(
          (c: { model: string; attack: string }) =>
            c.model === dirs[n] && c.attack.startsWith('pgd'),
        );
        expect(model.n, n).toBe(EVAL);
        expect(model.clean_acc, n).toBeGreaterThan(0.6);
        expect(cell.stats.robust_acc, n).toBeLessThan(0.1);
      }
    });
  },
);
