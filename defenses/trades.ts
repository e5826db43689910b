/**
 * TRADES (Zhang et al. 2019): minimize CE(f(x), y) + β·KL(f(x) ‖ f(x′)), where x′ maximizes the
 * KL term inside the Linf eps-ball, found by PGD from x + 0.001·N(0, 1).
 */
import tf from '#tfjs';
import type { Classifier } from '../models/classifier.js';
import { crossEntropy } from '../attacks/losses.js';
import { linf } from '../attacks/norms.js';
import { iterate } from '../attacks/iterative.js';
import { Rng } from '../util/rng.js';

/** Per-example KL(p ‖ softmax(z)) for fixed probabilities p. */
export function klFromProbs(p: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => p.mul(p.add(1e-12).log().sub(tf.logSoftmax(z))).sum(1) as tf.Tensor1D);
}

/** Batch-mean KL(softmax(zClean) ‖ softmax(zAdv)) — gradients flow through both. */
export function klDivergence(zClean: tf.Tensor2D, zAdv: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(zClean);
    return logP
      .exp()
      .mul(logP.sub(tf.logSoftmax(zAdv)))
      .sum(1)
      .mean() as tf.Scalar;
  });
}

export function tradesLoss(
  zClean: tf.Tensor2D,
  zAdv: tf.Tensor2D,
  y: tf.Tensor1D,
  beta: number,
): tf.Scalar {
  return tf.tidy(
    () => crossEntropy(zClean, y).mean().add(klDivergence(zClean, zAdv).mul(beta)) as tf.Scalar,
  );
}

/** x′ for TRADES: PGD (inference mode) on KL(f(x) ‖ f(x′)) from x + 0.001·N(0,1). */
export async function tradesAdversary(
  classifier: Classifier,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  o: { eps: number; alpha: number; steps: number; seed: number },
): Promise<tf.Tensor4D> {
  const p = tf.tidy(() => tf.softmax(classifier.logits(x, 'inference')) as tf.Tensor2D);
  const rng = new Rng(o.seed);
  const start = tf.tidy(
    () =>
      x
        .add(tf.randomNormal(x.shape, 0, 0.001, 'float32', rng.seed()))
        .clipByValue(0, 1) as tf.Tensor4D,
  );
  const setup = {
    classifier,
    objective: (z: tf.Tensor2D) => klFromProbs(p, z),
    mode: 'inference' as const,
    eotSamples: 1,
  };
  const ctx = { classifier, x, y, seed: () => rng.seed() };
  const adv = await iterate(ctx, setup, {
    norm: linf,
    eps: o.eps,
    alpha: o.alpha,
    steps: o.steps,
    randomStart: false,
    select: 'last',
    start,
  });
  tf.dispose([p, start]);
  return adv;
}
