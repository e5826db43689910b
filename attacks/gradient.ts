/**
 * One evaluation of the attack objective and its input gradient, averaged over `eotSamples`
 * forward/backward passes (Expectation over Transformation) for randomized classifiers.
 */
import tf from '#tfjs';
import type { Classifier, ModelMode } from '../models/classifier.js';
import type { Objective } from './losses.js';
import { inputGrad } from '../backend/ops/gradients.js';

export interface Evaluation {
  /** d objective / d x, summed over the batch's examples (each row is that example's gradient). */
  grad: tf.Tensor4D;
  /** Per-example objective, [N]. */
  value: tf.Tensor1D;
  /** Logits, [N, classes] (the EOT mean for randomized classifiers). */
  logits: tf.Tensor2D;
}

export interface GradientSetup {
  classifier: Classifier;
  objective: Objective;
  mode: ModelMode;
  eotSamples: number;
}

function evaluateOnce(
  s: GradientSetup,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
): Evaluation {
  let logits: tf.Tensor2D | undefined;
  let value: tf.Tensor1D | undefined;
  const grad = inputGrad((xi: tf.Tensor) => {
    const z = s.classifier.logits(xi as tf.Tensor4D, s.mode);
    const v = s.objective(z, labels, targets);
    logits = tf.keep(z);
    value = tf.keep(v);
    return v.sum();
  })(x) as tf.Tensor4D;
  return { grad, value: value!, logits: logits! };
}

/** The caller owns (and disposes) the three returned tensors. */
export function evaluate(
  s: GradientSetup,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
): Evaluation {
  if (s.eotSamples <= 1) return evaluateOnce(s, x, labels, targets);
  let sum = evaluateOnce(s, x, labels, targets);
  for (let k = 1; k < s.eotSamples; k++) {
    const next = evaluateOnce(s, x, labels, targets);
    const added: Evaluation = {
      grad: sum.grad.add(next.grad),
      value: sum.value.add(next.value),
      logits: sum.logits.add(next.logits),
    };
    tf.dispose([sum.grad, sum.value, sum.logits, next.grad, next.value, next.logits]);
    sum = added;
  }
  const inv = 1 / s.eotSamples;
  const mean: Evaluation = {
    grad: sum.grad.mul(inv),
    value: sum.value.mul(inv),
    logits: sum.logits.mul(inv),
  };
  tf.dispose([sum.grad, sum.value, sum.logits]);
  return mean;
}

/** Objective and logits without a gradient (one forward pass, or the EOT mean). */
export function evaluateForward(
  s: GradientSetup,
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  targets?: tf.Tensor1D,
): { value: tf.Tensor1D; logits: tf.Tensor2D } {
  return tf.tidy(() => {
    let logits = s.classifier.logits(x, s.mode);
    let value = s.objective(logits, labels, targets);
    for (let k = 1; k < s.eotSamples; k++) {
      const z = s.classifier.logits(x, s.mode);
      logits = logits.add(z);
      value = value.add(s.objective(z, labels, targets));
    }
    const inv = 1 / Math.max(1, s.eotSamples);
    return { value: value.mul(inv) as tf.Tensor1D, logits: logits.mul(inv) as tf.Tensor2D };
  });
}
