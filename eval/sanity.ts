/**
 * Checks that flag evaluations which are probably wrong — mostly gradient masking, where an attack
 * looks strong against a model only because its gradients are useless (Athalye et al. 2018;
 * Carlini et al. 2019, "On Evaluating Adversarial Robustness").
 */
import tf from '#tfjs';
import type { ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, makeBatch } from '../data/batches.js';
import { crossEntropy } from '../attacks/losses.js';
import type { Classifier } from '../models/classifier.js';
import { Rng } from '../util/rng.js';
import { inputGrad } from '../backend/ops/gradients.js';

export interface ModelChecks {
  /** Share of examples whose input gradient is exactly zero / not finite. */
  zero_grad_share: number;
  nonfinite_grad_share: number;
  /**
   * Share of examples whose loss does not rise after one gradient-sign step of ASCENT_STEP: the
   * gradient should point uphill at that scale. Catches gradients that are wrong rather than zero
   * (shattered, reversed, or zeroed by a broken kernel — tfjs's wasm Sign zeroed |g| < 1.2e-7).
   */
  no_ascent_share: number;
  /** Outputs are all in [0,1] with rows summing to 1: probabilities rather than logits. */
  outputs_look_like_probabilities: boolean;
  /** Two forward passes on the same images differ: the model is randomized, whatever its metadata says (AutoAttack's check). */
  outputs_vary?: boolean;
  /** Outputs per image: targeted attacks can target at most classes − 1 of them. */
  classes?: number;
  checked: number;
}

/** The step of the ascent check, in [0,1] pixels: small enough for the loss to be near-linear. */
export const ASCENT_STEP = 1 / 255;

/** Gradient and output checks on the first (up to) 256 images. */
export function modelChecks(c: Classifier, set: ImageSet): ModelChecks {
  const n = Math.min(256, set.count);
  const b = makeBatch(
    set,
    Int32Array.from({ length: n }, (_, i) => i),
    NO_AUGMENT,
    new Rng(0),
  );
  const stats = tf.tidy(() => {
    const z = c.logits(b.x, 'inference');
    const again = c.logits(b.x, 'inference');
    const varies = z.sub(again).abs().max().greater(z.abs().max().mul(1e-6));
    const probs = z
      .min()
      .greaterEqual(0)
      .logicalAnd(z.max().lessEqual(1))
      .logicalAnd(z.sum(1).sub(1).abs().max().less(1e-3));
    const g = inputGrad((x: tf.Tensor) =>
      crossEntropy(c.logits(x as tf.Tensor4D, 'inference'), b.y).sum(),
    )(b.x);
    const perExample = g.abs().sum([1, 2, 3]);
    const stepped = b.x.add(g.sign().mul(ASCENT_STEP)).clipByValue(0, 1) as tf.Tensor4D;
    const noAscent = crossEntropy(c.logits(stepped, 'inference'), b.y).lessEqual(
      crossEntropy(z, b.y),
    );
    return tf.stack([
      perExample.equal(0).cast('float32').mean(),
      perExample.isFinite().logicalNot().cast('float32').mean(),
      noAscent.cast('float32').mean(),
      probs.cast('float32'),
      varies.cast('float32'),
    ]);
  });
  const [zero, nonfinite, noAscent, probs, varies] = stats.dataSync();
  tf.dispose([stats, b.x, b.y]);
  return {
    zero_grad_share: zero,
    nonfinite_grad_share: nonfinite,
    no_ascent_share: noAscent,
    outputs_look_like_probabilities: probs === 1,
    outputs_vary: varies === 1,
    classes: c.numClasses,
    checked: n,
  };
}
