import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { GRAPH_OPS, registerGraphOps } from '../../backend/ops/graph-ops.js';
import { wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { GRAPH_FIXTURES, type GraphFixture, loadGraphFolder } from '../fixtures/graph-models.js';
import { relErr, tmpDir, expectNoLeak } from '../helpers.js';

const BATCH = 4;
const SIZE = 16;
const names = Object.keys(GRAPH_FIXTURES) as (keyof typeof GRAPH_FIXTURES)[];
let root: string;
const fixtures = {} as Record<keyof typeof GRAPH_FIXTURES, GraphFixture>;

/** Seeded images in [0, 1] and labels for a fixture. */
function batch(fx: GraphFixture): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return tf.tidy(() => ({
    x: tf.randomUniform([BATCH, ...fx.imageShape], 0, 1, 'float32', 11) as tf.Tensor4D,
    y: tf.oneHot(
      tf.tensor1d(
        [0, 3, 7, 9].map((c) => c % fx.classes),
        'int32',
      ),
      fx.classes,
    ) as tf.Tensor2D,
  }));
}

/** The attack's input gradient: of the cross-entropy of the logits node. */
const lossGrad = (model: tf.GraphModel, fx: GraphFixture, y: tf.Tensor) =>
  tf.valueAndGrad(
    (x: tf.Tensor) =>
      tf.losses.softmaxCrossEntropy(y, model.execute(x, fx.logitsNode) as tf.Tensor) as tf.Scalar,
  );

/** Logits, loss and input gradient on the current backend. */
async function run(fx: GraphFixture) {
  const model = await loadGraphFolder(fx.dir);
  try {
    const { x, y } = batch(fx);
    const out = tf.tidy(() => {
      const { value, grad } = lossGrad(model, fx, y)(x);
      return {
        logits: (model.execute(x, fx.logitsNode) as tf.Tensor).dataSync().slice(),
        loss: value.dataSync()[0],
        grad: grad.dataSync().slice(),
      };
    });
    tf.dispose([x, y]);
    return out;
  } finally {
    model.dispose();
  }
}

const reference = {} as Record<string, Awaited<ReturnType<typeof run>>>;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  root = tmpDir('graph-fixtures');
  for (const name of names)
    fixtures[name] = GRAPH_FIXTURES[name](path.join(root, name), { size: SIZE });
  await tf.setBackend('cpu');
  for (const name of names) reference[name] = await run(fixtures[name]);
  await tf.setBackend('wasm');
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('graph-model fixtures', () => {
  it('are written as tensorflowjs_converter writes them: format, signature with a dynamic batch, one weights shard', () => {
    for (const name of names) {
      const json = JSON.parse(fs.readFileSync(path.join(fixtures[name].dir, 'model.json'), 'utf8'));
      expect(json.format).toBe('graph-model');
      expect(
        json.signature.inputs.input_1.tensorShape.dim.map((d: { size: string }) => d.size),
      ).toEqual(['-1', String(SIZE), String(SIZE), '3']);
      expect(json.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
      const bytes = json.weightsManifest[0].weights.reduce(
        (s: number, w: { shape: number[] }) => s + 4 * w.shape.reduce((a, b) => a * b, 1),
        0,
      );
      expect(fs.statSync(path.join(fixtures[name].dir, 'group1-shard1of1.bin')).size).toBe(bytes);
    }
  });

  it('use the ops of converted MobileNet-V2, ResNet and EfficientNet graphs', () => {
    const has = (name: keyof typeof GRAPH_FIXTURES, ops: string[]) =>
      expect(ops.filter((op) => !fixtures[name].ops[op])).toEqual([]);
    has('mobilenetV2', [
      '_FusedConv2D',
      'Conv2D',
      'DepthwiseConv2dNative',
      'FusedDepthwiseConv2dNative',
      'FusedBatchNormV3',
      'Relu6',
      'AddV2',
      'Pad',
      'Mean',
      'MatMul',
      'BiasAdd',
      'Softmax',
    ]);
    has('resnet', [
      'Conv2D',
      'FusedBatchNormV3',
      'Relu',
      'MaxPool',
      'AvgPool',
      'AddV2',
      'Identity',
      '_FusedMatMul',
      'Softmax',
    ]);
    has('efficientNet', [
      'Sigmoid',
      'Mul',
      'Mean',
      'Sub',
      'RealDiv',
      'Reshape',
      'Squeeze',
      'ConcatV2',
      'Softmax',
    ]);
  });

  it('load with tf.loadGraphModel and run on the cpu backend: probabilities over the classes for any batch size', async () => {
    await tf.setBackend('cpu');
    try {
      for (const name of names) {
        const fx = fixtures[name];
        const model = await loadGraphFolder(fx.dir);
        for (const n of [1, 3]) {
          const sums = tf.tidy(
            () =>
              (
                model.predict(
                  tf.randomUniform([n, ...fx.imageShape], 0, 1, 'float32', 1),
                ) as tf.Tensor
              )
                .sum(1)
                .arraySync() as number[],
          );
          for (const s of sums) expect(s).toBeCloseTo(1, 5);
        }
        model.dispose();
      }
    } finally {
      await tf.setBackend('wasm');
    }
    // The logits differ between examples: the random weights are not degenerate.
    for (const name of names)
      expect(new Set(Array.from(reference[name].logits, (v) => v.toFixed(3))).size).toBeGreaterThan(
        fixtures[name].classes,
      );
  });
});

describe("input gradients of graph models on wasm equal the cpu backend's", () => {
  // Differences come from float32 summation order (XNNPACK, our SIMD kernels, Winograd) through ~10
  // layers: relative to the largest value.
  const TOLERANCE = { logits: 1e-5, grad: 1e-5 }; // measured: ≤ 3.5e-7 for both
  for (const name of names) {
    it(name, async () => {
      const before = [
        'depthwise_backprop_input',
        'depthwise_filter_grad',
        'conv2d_filter_grad',
        'winograd_filter_grad',
        'winograd4_filter_grad',
      ].map((k) => wasmKernelStats(k).calls);
      const got = await run(fixtures[name]);
      const [dx, dw, convDw, winoDw, wino4Dw] = [
        'depthwise_backprop_input',
        'depthwise_filter_grad',
        'conv2d_filter_grad',
        'winograd_filter_grad',
        'winograd4_filter_grad',
      ].map((k, i) => wasmKernelStats(k).calls - before[i]);
      const ref = reference[name];
      expect(relErr(got.logits, ref.logits)).toBeLessThanOrEqual(TOLERANCE.logits);
      expect(got.loss).toBeCloseTo(ref.loss, 5);
      expect(relErr(got.grad, ref.grad)).toBeLessThanOrEqual(TOLERANCE.grad);
      expect(got.grad.some((v) => v !== 0)).toBe(true);
      // Our depthwise input gradient ran once per depthwise layer; no weight gradient ran at all.
      expect(dx).toBe(
        name === 'resnet'
          ? 0
          : (fixtures[name].ops.DepthwiseConv2dNative ?? 0) +
              (fixtures[name].ops.FusedDepthwiseConv2dNative ?? 0),
      );
      expect([dw, convDw, winoDw, wino4Dw]).toEqual([0, 0, 0, 0]);
    });
  }
});

describe('fused graph ops (backend/ops/graph-ops.ts)', () => {
  it("give the stock ops' values and gradients (cpu)", async () => {
    await tf.setBackend('cpu');
    try {
      for (const name of names) {
        for (const op of Object.keys(GRAPH_OPS)) tf.deregisterOp(op);
        let stock: Awaited<ReturnType<typeof run>>;
        try {
          stock = await run(fixtures[name]);
        } finally {
          registerGraphOps();
        }
        expect(relErr(reference[name].logits, stock.logits)).toBeLessThanOrEqual(1e-6);
        expect(relErr(reference[name].grad, stock.grad)).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('compute no weight gradient for an input gradient, where the stock ones did (wasm profile)', async () => {
    const fx = fixtures.efficientNet;
    const kernelsOf = async (ours: boolean) => {
      if (!ours) for (const op of Object.keys(GRAPH_OPS)) tf.deregisterOp(op);
      try {
        const model = await loadGraphFolder(fx.dir);
        const { x, y } = batch(fx);
        const profile = await tf.profile(() => {
          tf.tidy(() => {
            lossGrad(model, fx, y)(x).grad.dataSync();
          });
        });
        tf.dispose([x, y]);
        model.dispose();
        return new Set(profile.kernels.map((k) => k.name));
      } finally {
        registerGraphOps();
      }
    };
    expect((await kernelsOf(false)).has('Conv2DBackpropFilter')).toBe(true);
    expect((await kernelsOf(true)).has('Conv2DBackpropFilter')).toBe(false);
  });
});

describe('repeated input gradients', () => {
  it('leave no tensors or wasm buffers behind', async () => {
    for (const name of names) {
      const fx = fixtures[name];
      const model = await loadGraphFolder(fx.dir);
      const { x, y } = batch(fx);
      const grad = lossGrad(model, fx, y);
      const step = () => tf.tidy(() => grad(x).grad.dataSync());
      expectNoLeak(step);
      tf.dispose([x, y]);
      model.dispose();
    }
  });
});
