/** The per-example state APGD's variants (Linf/L2 and L1) carry from step to step, and its bookkeeping. */
import tf from '#tfjs';
import type { RunContext } from './attack.js';
import { evaluate, type GradientSetup } from './gradient.js';
import type { Criterion } from './losses.js';
import { BestTracker, exampleMask } from './iterative.js';

/** APGD's best-loss point per example: x_best, its gradient and its loss. */
interface BestLoss {
  xBest: tf.Tensor4D;
  gradBest: tf.Tensor4D;
  lossBest: tf.Tensor1D;
}

/** `s` with x_best, its gradient and loss replaced where `value` beats the best loss so far (call inside tidy). */
export function improveBest<S extends BestLoss>(
  s: S,
  x: tf.Tensor4D,
  grad: tf.Tensor4D,
  value: tf.Tensor1D,
): S {
  const improved = value.greater(s.lossBest);
  return {
    ...s,
    xBest: tf.where(exampleMask(improved, x), x, s.xBest) as tf.Tensor4D,
    gradBest: tf.where(exampleMask(improved, grad), grad, s.gradBest) as tf.Tensor4D,
    lossBest: tf.where(improved, value, s.lossBest) as tf.Tensor1D,
  };
}

/** A step's new state; at a checkpoint where examples go back to x_best, the point and gradient they continue from. */
export interface StepUpdate<S> {
  s: S;
  xAdv?: tf.Tensor4D;
  grad?: tf.Tensor4D;
}

/** Takes `next` over: disposes the state tensors it replaced (those carried over stay), and the point and gradient when it moved examples. */
export function adoptUpdate<S extends object>(
  s: S,
  xAdv: tf.Tensor4D,
  grad: tf.Tensor4D,
  next: StepUpdate<S>,
): { s: S; xAdv: tf.Tensor4D; grad: tf.Tensor4D; moved: boolean } {
  const carried = new Set(Object.values(next.s));
  tf.dispose(Object.values(s).filter((t) => !carried.has(t)) as tf.Tensor[]);
  if (!next.xAdv) return { s: next.s, xAdv, grad, moved: false };
  tf.dispose([xAdv, grad]);
  return { s: next.s, xAdv: next.xAdv, grad: next.grad!, moved: true };
}

/** Evaluates the new point `xAdv` and records it in `tracker`; the caller disposes `e`'s value and logits and `ok`. */
export function evaluateStep(
  ctx: RunContext,
  setup: GradientSetup,
  xAdv: tf.Tensor4D,
  tracker: BestTracker,
  success: Criterion,
) {
  const e = evaluate(setup, xAdv, ctx.y, ctx.targets);
  const ok = success(e.logits, ctx.y, ctx.targets);
  tracker.update(xAdv, e.value, ok, e.logits);
  return { e, ok };
}

/**
 * A run's first evaluation at its starting point `xAdv`: a tracker holding it, the gradient there,
 * the loss (the caller disposes it) and the best-loss state starting at that point.
 */
export function startRun(
  ctx: RunContext,
  setup: GradientSetup,
  xAdv: tf.Tensor4D,
  success: Criterion,
): { tracker: BestTracker; grad: tf.Tensor4D; loss: tf.Tensor1D; best: BestLoss } {
  const { y, targets } = ctx;
  const first = evaluate(setup, xAdv, y, targets);
  const tracker = new BestTracker(xAdv, xAdv.shape[0]);
  const ok = success(first.logits, y, targets);
  tracker.update(xAdv, first.value, ok, first.logits);
  tf.dispose([first.logits, ok]);
  return {
    tracker,
    grad: first.grad,
    loss: first.value,
    best: { xBest: xAdv.clone(), gradBest: first.grad.clone(), lossBest: first.value.clone() },
  };
}
