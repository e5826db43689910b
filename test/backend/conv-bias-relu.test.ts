import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { conv2dBias } from '../../backend/ops/conv-bias.js';
import { conv2dBiasRelu } from '../../backend/ops/conv-bias-relu.js';
import {
  useWasmKernels,
  useWinograd,
  wasmKernelStats,
  winogradTile,
} from '../../backend/wasm/wasm-kernels.js';
import { createModel } from '../../models/zoo.js';
import { foldBatchNorm, foldedClassifier } from '../../models/fold.js';
import { Rng } from '../../util/rng.js';
import { randomArray, relErr } from '../helpers.js';

type Shape4 = [number, number, number, number];

interface Case {
  k: number;
  stride: number;
  pad: 'same' | 'valid';
  h: number;
  cin: number;
  cout: number;
  residual: boolean;
}

/** The op (fused) or conv2dBias, Add, Relu (composed), and the gradients of sum(y · r) w.r.t. every input. */
function run(
  fused: boolean,
  c: Case,
  data: { x: Float32Array; w: Float32Array; b: Float32Array; res: Float32Array; r: Float32Array },
) {
  return tf.tidy(() => {
    const ho = c.pad === 'same' ? Math.ceil(c.h / c.stride) : Math.ceil((c.h - c.k + 1) / c.stride);
    const wo =
      c.pad === 'same' ? Math.ceil((c.h + 1) / c.stride) : Math.ceil((c.h + 2 - c.k) / c.stride);
    const ys = [2, ho, wo, c.cout] as Shape4;
    const inputs = [
      tf.tensor4d(data.x, [2, c.h, c.h + 1, c.cin]),
      tf.tensor4d(data.w, [c.k, c.k, c.cin, c.cout]),
      tf.tensor1d(data.b),
      tf.tensor4d(
        data.res.subarray(
          0,
          ys.reduce((a, b) => a * b),
        ),
        ys,
      ),
    ];
    const f = (...[x, w, b, res]: tf.Tensor[]) => {
      const strides: [number, number] = [c.stride, c.stride];
      const residual = c.residual ? (res as tf.Tensor4D) : null;
      if (fused)
        return conv2dBiasRelu(
          x as tf.Tensor4D,
          w as tf.Tensor4D,
          b as tf.Tensor1D,
          residual,
          strides,
          c.pad,
        );
      const y = conv2dBias(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D, strides, c.pad);
      return tf.relu(residual ? tf.add(y, residual) : y);
    };
    const loss = (...t: tf.Tensor[]) =>
      tf.sum(
        tf.mul(
          f(...t),
          tf.tensor(
            data.r.subarray(
              0,
              ys.reduce((a, b) => a * b),
            ),
            ys,
          ),
        ),
      );
    const grads = tf.grads(loss)(c.residual ? inputs : inputs.slice(0, 3));
    return [f(...inputs), ...grads].map((t) => t.dataSync().slice());
  });
}

/** Random data with exact zeros, -0 and a NaN where the ReLU and its mask meet them. */
function caseData(c: Case) {
  const rng = new Rng(c.h * 100 + c.cout + (c.residual ? 7 : 0));
  const size = 2 * c.h * (c.h + 1) * Math.max(c.cin, c.cout);
  const x = randomArray(2 * c.h * (c.h + 1) * c.cin, rng);
  const w = randomArray(c.k * c.k * c.cin * c.cout, rng);
  const b = randomArray(c.cout, rng);
  const res = randomArray(size, rng);
  const r = randomArray(size, rng);
  return { x, w, b, res, r };
}

const bitwiseEqual = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('conv2d + bias (+ residual) + ReLU as one op', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Winograd (3x3 stride 1, F(4x4) and F(2x2)), the direct kernel (stride 2, odd channels: its scalar tail), 1x1.
  const cases: Case[] = [
    { k: 3, stride: 1, pad: 'same', h: 9, cin: 8, cout: 16, residual: true },
    { k: 3, stride: 1, pad: 'same', h: 9, cin: 8, cout: 16, residual: false },
    { k: 3, stride: 2, pad: 'same', h: 10, cin: 5, cout: 7, residual: true },
    { k: 1, stride: 1, pad: 'valid', h: 6, cin: 4, cout: 12, residual: false },
  ];
  for (const c of cases) {
    const name = `${c.k}x${c.k} stride ${c.stride} ${c.pad}, ${c.cin}→${c.cout}${c.residual ? ', residual' : ''}`;
    it(`matches conv2d + add + relu on the cpu backend, output and gradients: ${name}`, async () => {
      const data = caseData(c);
      await tf.setBackend('cpu');
      const ref = run(false, c, data);
      await tf.setBackend('wasm');
      const ours = run(true, c, data);
      expect(ours.length).toBe(ref.length);
      for (let i = 0; i < ref.length; i++)
        expect(relErr(ours[i], ref[i])).toBeLessThanOrEqual(1e-5);
    });

    it(`is bit for bit the separate ops on wasm (epilogue in the kernels, F(4x4), F(2x2), direct): ${name}`, () => {
      const data = caseData(c);
      // a NaN and exact zeros reach the ReLU: the epilogue keeps NaN and writes +0 as Relu does
      data.b[0] = NaN;
      data.res.fill(0, 0, 5);
      const tile = winogradTile();
      try {
        for (const m of [4, 2] as const) {
          useWinograd(true, m);
          const ref = run(false, c, data);
          const calls = wasmKernelStats(m === 4 ? 'winograd4_conv' : 'winograd_conv').calls;
          const ours = run(true, c, data);
          if (c.k === 3 && c.stride === 1)
            expect(
              wasmKernelStats(m === 4 ? 'winograd4_conv' : 'winograd_conv').calls,
            ).toBeGreaterThan(calls);
          for (let i = 0; i < ref.length; i++) expect(bitwiseEqual(ours[i], ref[i])).toBe(true);
        }
      } finally {
        useWinograd(true, tile);
      }
    });
  }

  it('without our kernels (tfjs wasm) it gives the same values', () => {
    const c = cases[0];
    const data = caseData(c);
    const ref = run(false, c, data);
    useWasmKernels(false);
    try {
      const ours = run(true, c, data);
      for (let i = 0; i < ref.length; i++)
        expect(relErr(ours[i], ref[i])).toBeLessThanOrEqual(1e-5);
    } finally {
      useWasmKernels(true);
    }
  });

  it('runs as one kernel on wasm (no Add, no Relu); an input gradient has no filter gradient and leaves nothing', async () => {
    const x = tf.randomNormal([2, 8, 8, 8]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 8, 8]) as tf.Tensor4D;
    const b = tf.randomNormal([8]) as tf.Tensor1D;
    const res = tf.randomNormal([2, 8, 8, 8]) as tf.Tensor4D;
    const p = await tf.profile(() => conv2dBiasRelu(x, w, b, res, [1, 1], 'same'));
    tf.dispose(p.result as tf.Tensor);
    expect(p.kernelNames).toEqual(['RobustConv2DBiasRelu']);
    const dW = ['winograd_filter_grad', 'winograd4_filter_grad', 'conv2d_filter_grad'];
    const step = () =>
      tf.tidy(() =>
        tf
          .grad((xi: tf.Tensor) =>
            conv2dBiasRelu(xi as tf.Tensor4D, w, b, res, [1, 1], 'same')
              .square()
              .sum(),
          )(x)
          .dataSync(),
      );
    step();
    const before = dW.map((k) => wasmKernelStats(k).calls);
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    for (let i = 0; i < 3; i++) step();
    expect(dW.map((k) => wasmKernelStats(k).calls)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(buffers);
    tf.dispose([x, w, b, res]);
  });

  it("a folded ResNet's classifier runs the fused ops: logits and input gradient bit for bit the folded model's, memory flat", async () => {
    const model = createModel('resnet20', {
      inputShape: [16, 16, 3],
      numClasses: 10,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      seed: 5,
      width: 8,
    });
    model.setUserDefinedMetadata({ robust: { model: 'resnet20', width: 8 } });
    const folded = foldBatchNorm(model)!;
    const classifier = foldedClassifier(model)!;
    const x = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 3);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10));
    const pass = (f: (x: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() => [
        f(x).dataSync().slice(),
        tf
          .grad((xi: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, f(xi)))(x)
          .dataSync()
          .slice(),
      ]);
    const ref = pass((t) => folded.apply(t, { training: false }) as tf.Tensor);
    const p = await tf.profile(() => classifier.logits(x, 'inference'));
    tf.dispose(p.result as tf.Tensor);
    expect(p.kernels.filter((k) => k.name === 'RobustConv2DBiasRelu').length).toBe(19); // 19 ReLUs
    expect(p.kernelNames).not.toContain('Relu');
    // the one Add left is the input normalization's offset
    expect(p.kernels.filter((k) => k.name === 'Add').length).toBe(1);
    const tensors = tf.memory().numTensors;
    const ours = pass((t) => classifier.logits(t, 'inference'));
    expect(tf.memory().numTensors).toBe(tensors);
    expect(bitwiseEqual(ours[0], ref[0])).toBe(true);
    expect(bitwiseEqual(ours[1], ref[1])).toBe(true);
    // on cpu (no fused kernel) the classifier runs the folded model's own apply
    await tf.setBackend('cpu');
    const q = await tf.profile(() => classifier.logits(x, 'inference'));
    tf.dispose(q.result as tf.Tensor);
    expect(q.kernelNames).toContain('Relu');
    await tf.setBackend('wasm');
    tf.dispose([x, y]);
    classifier.dispose?.();
    folded.dispose();
    model.dispose();
  });
});
