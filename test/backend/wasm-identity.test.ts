/** Identity / same-dtype Cast on wasm share data (the tape clones every saved tensor) and stay correct. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('wasm Identity and Cast', () => {
  it('a clone shares the data, survives disposing the original, and frees it last', () => {
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor([1.5, -2, 3]);
    const y = x.clone();
    expect(y.dataId).toBe(x.dataId);
    expect(tf.memory().numDataBuffers - before).toBe(1);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2, 3]);
    y.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
  });

  it('casts that change the dtype still convert; same-dtype casts share', () => {
    const x = tf.tensor([1.7, -2.2, 3.9]);
    expect(Array.from(x.cast('int32').dataSync())).toEqual([1, -2, 3]);
    expect(x.cast('float32').dataId).toBe(x.dataId);
  });

  it('gradients through saved (cloned) tensors are unchanged', () => {
    const x = tf.tensor([[0.5, -1, 2]]);
    const g = tf.grad((t: tf.Tensor) => tf.relu(t).mul(t).sum())(x);
    expect(Array.from(g.dataSync())).toEqual([1, 0, 4]);
  });
});
