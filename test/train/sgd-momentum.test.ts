import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { sgdMomentum, sgdMomentumWithOps } from '../../backend/ops/sgd-momentum.js';
import {
  useRelaxedSimd,
  useWasmKernels,
  wasmKernelStats,
} from '../../backend/wasm/wasm-kernels.js';
import { createModel } from '../../models/zoo.js';
import { Sgd } from '../../train/sgd.js';
import { expectNoLeak } from '../helpers.js';

/** Values that make a fused multiply-add or a skipped rounding show: wide magnitudes, ±0, ±inf, NaN. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (next() * 2 - 1) * 10 ** Math.floor(next() * 12 - 8);
  a.set([0, -0, Infinity, -Infinity, NaN, 1e-40, -3e38].slice(0, n), 0);
  return a;
}

const bits = (t: tf.Tensor) => new Uint32Array((t.dataSync() as Float32Array).slice().buffer);

/** sgdMomentum's [w', v'] equal the tf ops' bit for bit (NaNs included, in any payload). */
function expectSameAsOps(n: number, step: { lr: number; momentum: number; weightDecay: number }) {
  const [w, g, v] = [1, 2, 3].map((k) => tf.tensor1d(values(n, n * 7 + k)));
  const ours = sgdMomentum(w, g, v, step);
  const ops = sgdMomentumWithOps(w, g, v, step);
  for (let k = 0; k < 2; k++) {
    const [a, b] = [ours[k].dataSync(), ops[k].dataSync()];
    const [ba, bb] = [bits(ours[k]), bits(ops[k])];
    let differ = 0;
    for (let i = 0; i < n; i++)
      if (ba[i] !== bb[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) differ++;
    expect(differ, `${['w', 'v'][k]} of ${n}: ${differ} values differ`).toBe(0);
  }
  tf.dispose([w, g, v, ...ours, ...ops]);
}

const STEPS = [
  { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
  { lr: 0.0123, momentum: 0.9, weightDecay: 0 },
  { lr: 1e-3, momentum: 0, weightDecay: 1e-2 },
];
// A tail after the SIMD blocks, one row of the C kernel and a tail, and enough for two threads.
const SIZES = [3, 4101, 600_001];

describe('sgdMomentum: one pass, the values of the tf ops', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 2 });
  });
  afterAll(() => {
    useWasmKernels(true);
    useRelaxedSimd(true);
  });

  it('on wasm, our kernel in both builds and on two threads; the heap loop without our kernels', () => {
    for (const relaxed of [false, true]) {
      useRelaxedSimd(relaxed);
      const before = wasmKernelStats('sgd_momentum').calls;
      for (const n of SIZES) for (const step of STEPS) expectSameAsOps(n, step);
      expect(wasmKernelStats('sgd_momentum').calls - before).toBe(SIZES.length * STEPS.length);
      expect(wasmKernelStats('sgd_momentum').lastThreads).toBe(2);
    }
    useWasmKernels(false);
    const before = wasmKernelStats('sgd_momentum').calls;
    for (const n of SIZES) for (const step of STEPS) expectSameAsOps(n, step);
    expect(wasmKernelStats('sgd_momentum').calls).toBe(before);
    useWasmKernels(true);
  });

  it('on cpu, a loop over its arrays', async () => {
    await tf.setBackend('cpu');
    try {
      for (const n of SIZES.slice(0, 2)) for (const step of STEPS) expectSameAsOps(n, step);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('refuses a gradient of another shape', () => {
    const [w, g] = [tf.zeros([4]), tf.zeros([5])];
    expect(() => sgdMomentum(w, g, w, STEPS[0])).toThrow(/shapes/);
    tf.dispose([w, g]);
  });

  it('Sgd.step: the update of the tf ops, no tensor left behind', () => {
    const model = createModel('resnet20', {
      inputShape: [8, 8, 3],
      numClasses: 3,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      width: 4,
    });
    const vars = model.trainableWeights;
    const grads = tf.tidy(() =>
      Object.fromEntries(
        vars.map((v, i) => [
          (v.read() as tf.Variable).name,
          tf.randomNormal(v.shape, 0, 1, 'float32', i),
        ]),
      ),
    );
    // The reference: the same steps with tf ops on copies of the weights and buffers.
    const decayed = (name: string) => /kernel/.test(name);
    const ws = vars.map((v) => v.read().clone());
    const bufs = vars.map((v) => tf.zerosLike(v.read()));
    const sgd = new Sgd(vars, { momentum: 0.9, weightDecay: 5e-4 });
    for (let step = 0; step < 3; step++) {
      sgd.step(grads, 0.05);
      vars.forEach((v, i) => {
        const [w, b] = sgdMomentumWithOps(ws[i], grads[(v.read() as tf.Variable).name], bufs[i], {
          lr: 0.05,
          momentum: 0.9,
          weightDecay: decayed(v.name) ? 5e-4 : 0,
        });
        tf.dispose([ws[i], bufs[i]]);
        [ws[i], bufs[i]] = [w, b];
      });
    }
    vars.forEach((v, i) => expect(bits(v.read()), v.name).toEqual(bits(ws[i])));
    expect(sgd.state().map((s) => Array.from(new Uint32Array(s.slice().buffer)))).toEqual(
      bufs.map((b) => Array.from(bits(b))),
    );
    expectNoLeak(() => sgd.step(grads, 0.05));
    tf.dispose([...ws, ...bufs, ...Object.values(grads)]);
    sgd.dispose();
    model.dispose();
  });
});
