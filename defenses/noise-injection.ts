/**
 * Gaussian noise injection at inference: the classifier adds N(0, std²) noise to its input and
 * averages the logits over `samples` draws. It is randomized, so gradient attacks against it must
 * average gradients over draws (EOT) to be meaningful.
 */
import tf from '#tfjs';
import { asClassifier, type Classifier } from '../models/classifier.js';
import { check } from '../util/errors.js';
import { checkCount, LIMITS } from '../util/limits.js';
import { Rng } from '../util/rng.js';

export interface NoiseOptions {
  std: number;
  /** Draws averaged per prediction (default 1). */
  samples?: number;
  /** Seed of the noise stream; unseeded streams differ from run to run. */
  seed?: number;
}

export function noisyClassifier(model: tf.LayersModel | Classifier, o: NoiseOptions): Classifier {
  const base = asClassifier(model);
  const samples = o.samples ?? 1;
  check(Number.isFinite(o.std) && o.std >= 0, `noise std must be ≥ 0, got ${o.std}`);
  checkCount('noise samples', samples, LIMITS.samples);
  const rng = new Rng(o.seed ?? Math.floor(Math.random() * 2 ** 31));
  return {
    numClasses: base.numClasses,
    randomized: o.std > 0,
    statefulWeights: base.statefulWeights,
    dispose: () => base.dispose?.(),
    logits: (x, mode) =>
      tf.tidy(() => {
        let sum: tf.Tensor2D | undefined;
        for (let k = 0; k < samples; k++) {
          const noisy =
            o.std > 0 ? x.add(tf.randomNormal(x.shape, 0, o.std, 'float32', rng.seed())) : x;
          const z = base.logits(noisy as tf.Tensor4D, mode);
          sum = sum ? (sum.add(z) as tf.Tensor2D) : z;
        }
        return samples > 1 ? (sum!.div(samples) as tf.Tensor2D) : sum!;
      }),
  };
}
