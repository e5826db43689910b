/**
 * Per-example attack objectives on logits, written so that the attack always *maximizes* them:
 * untargeted attacks push the true class down, targeted ones pull the target class up.
 */
import tf from '#tfjs';
import { check } from '../util/errors.js';

export type LossName = 'ce' | 'dlr' | 'margin';

/** Per-example objective to maximize; `targets` is set for targeted attacks. */
export type Objective = (
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
) => tf.Tensor1D;

/**
 * Cross-entropy lse(z) − z_y, on a confidently classified row as log1p(Σ_{j≠y} e^{z_j − z_y}): the
 * plain form rounds to exactly 0 once the margin passes ~17, and attacks that keep the
 * highest-loss iterate or adapt their step to loss increases (PGD's choice, APGD) then see a flat
 * loss and never leave their start. Exact to float32 precision at any margin.
 */
function crossEntropyValue(z: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor1D {
  const zy = z.mul(y).sum(1);
  const confident = zy.greaterEqual(z.max(1));
  // min(·, 0) only keeps the unused branch finite on rows where z_y is not the largest logit.
  const tail = tf
    .exp(tf.minimum(z.sub(zy.expandDims(1)), 0))
    .mul(tf.sub(1, y))
    .sum(1);
  return tf.where(confident, tf.log1p(tail), tf.logSumExp(z, 1).sub(zy)) as tf.Tensor1D;
}

/**
 * Cross-entropy with its gradient softmax − one-hot written so that it does not cancel. Autodiff
 * gives the true-class entry as p_y − 1, which on a confident example (p_y rounds to 1 in float32)
 * is rounding noise of ~1e-7, larger than the other entries (p_j ~ 1e-10): the input gradient then
 * points nowhere. Here that entry is −Σ_{j≠y} p_j, exact.
 */
const stableCrossEntropy = tf.customGrad((logits, oneHot, save) => {
  const z = logits as tf.Tensor2D;
  const y = oneHot as tf.Tensor2D;
  (save as tf.GradSaveFunc)([z, y]);
  return {
    value: crossEntropyValue(z, y),
    gradFunc: (dy: tf.Tensor, [zs, ys]: tf.Tensor[]) => {
      const others = tf.softmax(zs).mul(tf.sub(1, ys)); // p_j off the true class, 0 on it
      const g = others.sub(ys.mul(others.sum(1, true)));
      return [g.mul(dy.expandDims(1)), tf.zerosLike(ys)];
    },
  };
});

/** Cross-entropy of each row of logits against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(
    () =>
      stableCrossEntropy(logits, tf.oneHot(labels, logits.shape[1]).cast('float32')) as tf.Tensor1D,
  );
}

/** The logit at column `idx[i]` of each row (differentiable in logits). */
function pick(logits: tf.Tensor2D, idx: tf.Tensor1D): tf.Tensor1D {
  return logits.mul(tf.oneHot(idx, logits.shape[1])).sum(1) as tf.Tensor1D;
}

/** Pushes column `idx[i]` of each row far down, so a following max skips it. */
function maskOut(logits: tf.Tensor2D, idx: tf.Tensor1D): tf.Tensor2D {
  return logits.add(tf.oneHot(idx, logits.shape[1]).mul(-1e9)) as tf.Tensor2D;
}

/**
 * The k largest logits of each row, sorted, as k tensors of shape [N]. Built from argMax and
 * one-hot picks rather than TopK, because every op on the gradient path needs a gradient.
 */
function sortedTop(logits: tf.Tensor2D, k: number): tf.Tensor1D[] {
  const out: tf.Tensor1D[] = [];
  let rest = logits;
  for (let j = 0; j < k; j++) {
    const idx = rest.argMax(1).cast('int32') as tf.Tensor1D;
    out.push(pick(logits, idx));
    rest = maskOut(rest, idx);
  }
  return out;
}

/**
 * Difference of Logits Ratio (Croce & Hein 2020): −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3),
 * invariant to shifting and scaling the logits. Needs at least 3 classes.
 */
export function dlr(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  check(
    logits.shape[1] >= 3,
    `the DLR loss needs at least 3 classes, the model has ${logits.shape[1]}`,
  );
  return tf.tidy(() => {
    const [z1, , z3] = sortedTop(logits, 3);
    const zy = pick(logits, labels);
    const bestOther = maskOut(logits, labels).max(1);
    return zy.sub(bestOther).neg().div(z1.sub(z3).add(1e-12)) as tf.Tensor1D;
  });
}

/** Targeted DLR: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2). Needs at least 4 classes. */
export function dlrTargeted(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targets: tf.Tensor1D,
): tf.Tensor1D {
  check(
    logits.shape[1] >= 4,
    `the targeted DLR loss needs at least 4 classes, the model has ${logits.shape[1]}`,
  );
  return tf.tidy(() => {
    const [z1, , z3, z4] = sortedTop(logits, 4);
    const margin = pick(logits, labels).sub(pick(logits, targets));
    return margin.neg().div(z1.sub(z3.add(z4).mul(0.5)).add(1e-12)) as tf.Tensor1D;
  });
}

/** Margin max_{j≠y} z_j − z_y: positive once the example is misclassified (Square's loss, negated). */
export function margin(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => maskOut(logits, labels).max(1).sub(pick(logits, labels)) as tf.Tensor1D);
}

export function objective(loss: LossName): Objective {
  if (loss === 'margin') return (z, y, t) => (t ? margin(z, t).neg() : margin(z, y)) as tf.Tensor1D;
  if (loss === 'dlr') return (z, y, t) => (t ? dlrTargeted(z, y, t) : dlr(z, y));
  return (z, y, t) => (t ? crossEntropy(z, t).neg() : crossEntropy(z, y)) as tf.Tensor1D;
}

/** When an adversarial example counts as found, per example (bool [N]). */
export type Criterion = (
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
) => tf.Tensor1D;

/** Misclassification, whatever the targets: APGD-T pulls towards a target but, as in AutoAttack, any wrong class is a success. */
export const misclassified: Criterion = (logits, labels) => isSuccess(logits, labels);

/** Per-example success: misclassified (untargeted) or classified as the target (targeted). */
export function isSuccess(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
): tf.Tensor1D {
  return tf.tidy(() => {
    const pred = predictedClass(logits);
    return (targets ? pred.equal(targets) : pred.notEqual(labels)) as tf.Tensor1D;
  });
}

/** Each row's top class (int32 [N]): what an attack reports as the model's prediction. */
export function predictedClass(logits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => logits.argMax(1).cast('int32') as tf.Tensor1D);
}
