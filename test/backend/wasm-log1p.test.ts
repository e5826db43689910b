import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';

describe('Log1p on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('is within 1e-6 (relative) of float64 log1p from 1e-40 to 3e38, tiny values included', () => {
    // tfjs's wasm Log1p computed log(1 + x): 0 below 6e-8 and 4e-5 off (relative) at 1e-3.
    const xs = [
      1e-40, 1e-18, -1e-18, 1e-9, -1e-9, 3e-8, 1e-3, -1e-3, 0.25, -0.5, 1, 7, -0.9999, 1e10, 3e38,
    ];
    const got = tf.tidy(() => tf.log1p(tf.tensor1d(xs)).dataSync());
    xs.forEach((x, i) => {
      const ref = Math.log1p(Math.fround(x));
      expect(Math.abs(got[i] - ref)).toBeLessThanOrEqual(1e-6 * Math.abs(ref));
    });
  });

  it('keeps the special values: log1p(0) = 0, log1p(−1) = −∞, log1p(∞) = ∞, NaN below −1 and for NaN', () => {
    const got = tf.tidy(() =>
      Array.from(tf.log1p(tf.tensor1d([0, -1, Infinity, -2, NaN])).dataSync()),
    );
    expect(got).toEqual([0, -Infinity, Infinity, NaN, NaN]);
  });

  it('leaves no tensor or buffer behind', () => {
    const x = tf.tensor1d([1e-9, 0.5]);
    tf.log1p(x).dispose();
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    tf.log1p(x).dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(buffers);
    x.dispose();
  });
});
