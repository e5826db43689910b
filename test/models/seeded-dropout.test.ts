/** Dropout masks from a train step's seed (models/seeded-dropout.ts): replayable, new each call. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { SeededDropout, seedDropout, seededDropout } from '../../models/seeded-dropout.js';
import { SUITE_THREADS } from '../helpers.js';

describe('seeded dropout', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  });

  it('a seed replays the same masks in the same order; each call within it draws a new one', () => {
    const layer = seededDropout({ rate: 0.5 });
    const x = tf.ones([4, 64]);
    const masks = () =>
      [0, 1].map((_) => Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync()));
    seedDropout(7);
    const first = masks();
    seedDropout(7);
    const again = masks();
    seedDropout(8);
    const other = masks();
    seedDropout(null);
    expect(again).toEqual(first);
    expect(first[1]).not.toEqual(first[0]);
    expect(other[0]).not.toEqual(first[0]);
    // inverted dropout: kept units scaled by 1/(1 − rate), the others 0
    expect(new Set(first[0])).toEqual(new Set([0, 2]));
    // inference: the identity
    expect(Array.from((layer.apply(x) as tf.Tensor).dataSync())).toEqual(Array(256).fill(1));
    x.dispose();
  });

  it('loaded models get it: the class is registered under the stock name', () => {
    const input = tf.input({ shape: [3] });
    const model = tf.model({
      inputs: input,
      outputs: tf.layers.dropout({ rate: 0.3 }).apply(input) as tf.SymbolicTensor,
    });
    const copy = tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) } as never);
    return copy.then((m) => expect(m.layers[1]).toBeInstanceOf(SeededDropout));
  });
});
