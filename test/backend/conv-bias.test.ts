import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { conv2dBias } from '../../backend/ops/conv-bias.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray, relErr } from '../helpers.js';

/** y = conv2dBias and the gradients of sum(y · r) w.r.t. x, filter and bias. */
function run(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  r: Float32Array,
  xs: number[],
  ws: number[],
  stride: number,
  pad: 'same' | 'valid',
) {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, xs as [number, number, number, number]);
    const wt = tf.tensor4d(w, ws as [number, number, number, number]);
    const bt = tf.tensor1d(b);
    const f = (p: tf.Tensor, q: tf.Tensor, c: tf.Tensor) => {
      const y = conv2dBias(
        p as tf.Tensor4D,
        q as tf.Tensor4D,
        c as tf.Tensor1D,
        [stride, stride],
        pad,
      );
      return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
    };
    const grads = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([xt, wt, bt]);
    const y = conv2dBias(xt, wt, bt, [stride, stride], pad);
    return [y, ...grads].map((t) => t.dataSync().slice());
  });
}

describe('conv2d + bias as one op', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Winograd (3x3 stride 1), the direct kernel (stride 2, odd channels), and tfjs's own kernels.
  const cases = [
    { k: 3, stride: 1, pad: 'same' as const, h: 9, cin: 8, cout: 16, kernels: true },
    { k: 3, stride: 2, pad: 'same' as const, h: 10, cin: 5, cout: 7, kernels: true },
    { k: 1, stride: 1, pad: 'valid' as const, h: 6, cin: 4, cout: 12, kernels: true },
    { k: 3, stride: 1, pad: 'same' as const, h: 9, cin: 8, cout: 16, kernels: false },
  ];
  for (const c of cases) {
    it(`matches conv2d + add on the cpu backend, output and all three gradients: ${c.k}x${c.k} stride ${c.stride} ${c.pad}, ${c.cin}→${c.cout}${c.kernels ? '' : ' (XNNPACK)'}`, async () => {
      const rng = new Rng(c.h * 100 + c.cout);
      const xs = [2, c.h, c.h + 1, c.cin];
      const ws = [c.k, c.k, c.cin, c.cout];
      const x = randomArray(
        xs.reduce((a, b) => a * b),
        rng,
      );
      const w = randomArray(
        ws.reduce((a, b) => a * b),
        rng,
      );
      const b = randomArray(c.cout, rng);
      const r = randomArray(2 * c.h * (c.h + 1) * c.cout, rng);
      await tf.setBackend('cpu');
      const ref = run(x, w, b, r, xs, ws, c.stride, c.pad);
      await tf.setBackend('wasm');
      useWasmKernels(c.kernels);
      try {
        const ours = run(x, w, b, r, xs, ws, c.stride, c.pad);
        for (let i = 0; i < 4; i++) expect(relErr(ours[i], ref[i])).toBeLessThanOrEqual(1e-5);
      } finally {
        useWasmKernels(true);
      }
    });
  }

  it('an input gradient computes no filter gradient, and nothing is left behind', () => {
    const x = tf.randomNormal([4, 8, 8, 8]) as tf.Tensor4D;
    const w = tf.variable(tf.randomNormal([3, 3, 8, 16])) as tf.Variable<tf.Rank.R4>;
    const b = tf.variable(tf.randomNormal([16])) as tf.Variable<tf.Rank.R1>;
    const dW = ['winograd_filter_grad', 'winograd4_filter_grad', 'conv2d_filter_grad'];
    const step = () =>
      tf.tidy(() =>
        tf
          .grad((xi: tf.Tensor) =>
            conv2dBias(xi as tf.Tensor4D, w, b, [1, 1], 'same')
              .square()
              .sum(),
          )(x)
          .dataSync(),
      );
    step();
    const before = dW.map((k) => wasmKernelStats(k).calls);
    const fused = wasmKernelStats('winograd4_conv').calls;
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    for (let i = 0; i < 3; i++) step();
    expect(dW.map((k) => wasmKernelStats(k).calls)).toEqual(before);
    expect(wasmKernelStats('winograd4_conv').calls - fused).toBe(6); // forward and dx, 3 times
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(buffers);
    tf.dispose([x, w, b]);
  });

  it('the op runs as one kernel on wasm: no Add', async () => {
    const x = tf.randomNormal([2, 8, 8, 8]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 8, 8]) as tf.Tensor4D;
    const b = tf.randomNormal([8]) as tf.Tensor1D;
    const { kernelNames } = await tf.profile(() => conv2dBias(x, w, b, [1, 1], 'same'));
    expect(kernelNames).not.toContain('Add');
    tf.dispose([x, w, b]);
  });
});
