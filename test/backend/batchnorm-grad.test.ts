import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';

describe('FusedBatchNorm gradient', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('equals autodiff through the elementary ops, for x, mean, variance, scale and offset', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([4, 3, 3, 5], 0, 1, 'float32', 1);
      const r = tf.randomNormal([4, 3, 3, 5], 0, 1, 'float32', 2);
      const mean = tf.randomNormal([5], 0, 1, 'float32', 3);
      const variance = tf.randomUniform([5], 0.5, 2, 'float32', 4);
      const scale = tf.randomNormal([5], 1, 0.3, 'float32', 5);
      const offset = tf.randomNormal([5], 0, 1, 'float32', 6);
      const fused = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
        tf
          .batchNorm(
            a as tf.Tensor4D,
            m as tf.Tensor1D,
            v as tf.Tensor1D,
            o as tf.Tensor1D,
            s as tf.Tensor1D,
            1e-3,
          )
          .mul(r)
          .sum();
      const plain = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
        a
          .sub(m)
          .mul(tf.rsqrt(v.add(1e-3)))
          .mul(s)
          .add(o)
          .mul(r)
          .sum();
      const g1 = tf.grads(fused)([x, mean, variance, scale, offset]);
      const g2 = tf.grads(plain)([x, mean, variance, scale, offset]);
      g1.forEach((g, i) => {
        const diff = g.sub(g2[i]).abs().max().dataSync()[0];
        const ref = g2[i].abs().max().dataSync()[0];
        expect(diff / ref).toBeLessThan(1e-4);
      });
    });
  });
});
