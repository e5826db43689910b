/**
 * Whether a classifier computes, under a gradient tape, the very logits a plain forward pass
 * computes. Attacks judge their points from taped passes (the ones that give them gradients); their
 * verdicts are the model's own only when the two agree bit for bit. They do not always: TF.js runs a
 * fused conv or matmul with an activation as its unfused parts while a tape records (and
 * backend/ops/graph-ops.ts does so for graph models' linear ones), which rounds differently, by ~1 ulp.
 */
import tf from '#tfjs';
import type { Classifier } from './classifier.js';
import { inputGrad } from '../backend/ops/gradients.js';

const known = new WeakMap<Classifier, boolean>();

/**
 * Compares the inference-mode logits of (the first 16 of) `x` with and without a tape, once per
 * classifier: the answer depends on the model's ops, not on the images, and each differing op
 * shows in most logits. A randomized classifier never agrees.
 */
export function sameUnderTape(c: Classifier, x: tf.Tensor4D): boolean {
  const cached = known.get(c);
  if (cached !== undefined) return cached;
  let same = !c.randomized;
  if (same) {
    const [plain, taped] = tf.tidy(() => {
      const probe = x.slice(0, Math.min(16, x.shape[0]));
      let z: tf.Tensor2D | undefined;
      inputGrad((xi: tf.Tensor) => {
        z = tf.keep(c.logits(xi as tf.Tensor4D, 'inference'));
        return z.sum();
      })(probe);
      return [c.logits(probe, 'inference'), z!];
    });
    const a = plain.dataSync();
    const b = taped.dataSync();
    tf.dispose([plain, taped]);
    same = a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  }
  known.set(c, same);
  return same;
}
