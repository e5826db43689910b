import os from 'node:os';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/index.js';
import { RobustError } from '../../util/errors.js';

describe('backend selection', () => {
  it('rejects unknown names with a RobustError', async () => {
    await expect(initBackend({ backend: 'tpu' })).rejects.toThrow(RobustError);
  });

  it('starts wasm multi-threaded in Node, one thread per core', async () => {
    const info = await initBackend({ backend: 'wasm' });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const cores = os.availableParallelism();
    expect(info.threads).toBe(Math.min(cores, 4)); // XNNPACK's pool is capped at 4 threads by tfjs
    // and the threads really compute: a conv gives the same result as on the cpu backend
    const x = tf.randomUniform([2, 9, 9, 3], 0, 1, 'float32', 7);
    const w = tf.randomUniform([3, 3, 3, 5], -1, 1, 'float32', 8);
    const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').dataSync();
    await tf.setBackend('cpu');
    const yRef = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').dataSync();
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yRef[i])).toBeLessThan(1e-4);
  });

  it('refuses to switch to another backend in the same process', async () => {
    await expect(initBackend({ backend: 'cpu' })).rejects.toThrow(/already running/);
  });
});
