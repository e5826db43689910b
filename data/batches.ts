/** Seeded shuffling, batching and on-the-fly augmentation (random crop with padding, h-flip). */
import tf from '#tfjs';
import type { ImageSet } from './dataset.js';
import { Rng } from '../util/rng.js';

export interface Augment {
  /** Zero padding for the random crop (4 for CIFAR); 0 = no crop. */
  cropPad: number;
  flip: boolean;
}

export const NO_AUGMENT: Augment = { cropPad: 0, flip: false };

/**
 * Copies examples `indices` into a float [0,1] NHWC buffer, each randomly shifted by up to
 * `cropPad` pixels (the padded border is zero) and mirrored with probability ½.
 */
export function gatherBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  augment: Augment,
  rng: Rng,
): Float32Array {
  const { height: h, width: w, channels: c } = set;
  const per = h * w * c;
  const out = new Float32Array(indices.length * per);
  const scale = 1 / 255;
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b] * per;
    const dst = b * per;
    const dy = augment.cropPad ? rng.int(2 * augment.cropPad + 1) - augment.cropPad : 0;
    const dx = augment.cropPad ? rng.int(2 * augment.cropPad + 1) - augment.cropPad : 0;
    const flip = augment.flip && rng.next() < 0.5;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < w; x++) {
        const sx0 = x + dx;
        if (sx0 < 0 || sx0 >= w) continue;
        const sx = flip ? w - 1 - sx0 : sx0;
        const s = src + (sy * w + sx) * c;
        const d = dst + (y * w + x) * c;
        for (let k = 0; k < c; k++) out[d + k] = set.images[s + k] * scale;
      }
    }
  }
  return out;
}

interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D; // int32 labels
  size: number;
}

/** Makes the tensors of one batch; the caller disposes them. */
export function makeBatch(
  set: ImageSet,
  indices: ArrayLike<number>,
  augment: Augment,
  rng: Rng,
): Batch {
  const pixels = gatherBatch(set, indices, augment, rng);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) labels[i] = set.labels[indices[i]];
  return {
    x: tf.tensor4d(pixels, [indices.length, set.height, set.width, set.channels]),
    y: tf.tensor1d(labels, 'int32'),
    size: indices.length,
  };
}

/** Index slices of an epoch: shuffled by `rng` when given, in order otherwise. */
export function epochBatches(count: number, batchSize: number, rng?: Rng): Int32Array[] {
  const order = rng ? rng.permutation(count) : Int32Array.from({ length: count }, (_, i) => i);
  const out: Int32Array[] = [];
  for (let i = 0; i < count; i += batchSize)
    out.push(order.subarray(i, Math.min(count, i + batchSize)));
  return out;
}
