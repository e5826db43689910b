/**
 * The gradient-descent core shared by FGSM, BIM, PGD and MI-FGSM (as in Foolbox 3): steps of
 * size alpha along `norm.normalize(gradient)`, each projected back to the eps-ball around x and
 * clipped to [0,1]. Norms differ only in normalize / project / randomStart.
 */
import tf from '#tfjs';
import type { AttackResult, RunContext } from './attack.js';
import { nonZero, usableBudget, type LpNorm } from './norms.js';
import { evaluate, evaluateForward, type Evaluation, type GradientSetup } from './gradient.js';
import { isSuccess, predictedClass } from './losses.js';
import { yieldToEventLoop } from '../util/platform.js';

export interface DescentConfig {
  norm: LpNorm;
  eps: number;
  alpha: number;
  steps: number;
  randomStart: boolean;
  /** MI-FGSM: decay of the accumulated L1-normalized gradient; undefined = plain steps. */
  momentum?: number;
  /**
   * 'best': per example, the first iterate that succeeds, else the one with the highest objective
   * (one extra forward pass); 'last': the final iterate (cheapest, used by adversarial training).
   */
  select: 'best' | 'last';
  /** Start here instead of at x or a random point in the ball (e.g. TRADES' x + 0.001·N(0,1)). */
  start?: tf.Tensor4D;
}

/** One run's outcome per example: the chosen point, its objective, whether it succeeds and its predicted class. */
export interface RunResult {
  adv: tf.Tensor4D;
  value: tf.Tensor1D;
  success: tf.Tensor1D; // bool
  predicted: tf.Tensor1D; // int32
}

/** A run's result as an attack returns it: the objective values are freed. */
export function attackResult(r: RunResult): AttackResult {
  r.value.dispose();
  return { adv: r.adv, success: r.success, predicted: r.predicted };
}

/** A per-example bool [N] spread to the shape of an image batch, for tf.where. */
export function exampleMask(mask: tf.Tensor, like: tf.Tensor4D): tf.Tensor4D {
  return mask.reshape([-1, 1, 1, 1]).tile([1, ...like.shape.slice(1)]) as tf.Tensor4D;
}

/** x + delta pulled into the eps-ball around x and into [0,1]. */
export function projectToBall(
  norm: LpNorm,
  x: tf.Tensor4D,
  point: tf.Tensor4D,
  eps: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const delta = point.sub(x) as tf.Tensor4D;
    if (norm.projectInBox)
      return x.add(norm.projectInBox(x, delta, eps)).clipByValue(0, 1) as tf.Tensor4D;
    return x.add(norm.project(delta, eps)).clipByValue(0, 1) as tf.Tensor4D;
  });
}

/** A starting point: x itself, or a random draw from the eps-ball (brought into [0,1]). */
export function startingPoint(
  norm: LpNorm,
  x: tf.Tensor4D,
  eps: number,
  random: boolean,
  seed: number,
): tf.Tensor4D {
  if (!random || eps === 0) return x.clone();
  return tf.tidy(() => {
    const delta = norm.randomStart(x.shape, eps, seed);
    if (norm.projectInBox)
      return x.add(norm.projectInBox(x, delta, eps)).clipByValue(0, 1) as tf.Tensor4D;
    return x.add(delta).clipByValue(0, 1) as tf.Tensor4D;
  });
}

/**
 * Running per-example choice of the first successful, else highest-objective, point, with the
 * class the evaluation that chose it predicted.
 */
export class BestTracker {
  adv: tf.Tensor4D;
  value: tf.Tensor1D;
  success: tf.Tensor1D;
  predicted: tf.Tensor1D;

  constructor(start: tf.Tensor4D, n: number) {
    this.adv = start.clone();
    this.value = tf.fill([n], -Infinity) as tf.Tensor1D;
    this.success = tf.zeros([n], 'bool') as tf.Tensor1D;
    this.predicted = tf.fill([n], -1, 'int32') as tf.Tensor1D;
  }

  /** Records `point`, evaluated: its objective, success and the logits they came from. */
  update(point: tf.Tensor4D, value: tf.Tensor1D, success: tf.Tensor1D, logits: tf.Tensor2D): void {
    const next = tf.tidy(() => {
      const open = this.success.logicalNot();
      const take = open.logicalAnd(success.logicalOr(value.greater(this.value)));
      return {
        adv: tf.where(exampleMask(take, point), point, this.adv) as tf.Tensor4D,
        value: tf.where(take, value, this.value) as tf.Tensor1D,
        success: this.success.logicalOr(success) as tf.Tensor1D,
        predicted: tf.where(take, predictedClass(logits), this.predicted) as tf.Tensor1D,
      };
    });
    tf.dispose([this.adv, this.value, this.success, this.predicted]);
    Object.assign(this, next);
  }

  result(): RunResult {
    return {
      adv: this.adv,
      value: this.value,
      success: this.success,
      predicted: this.predicted,
    };
  }
}

/**
 * Scales each example's gradient to unit mean absolute value (MI-FGSM's L1 normalization). No
 * additive epsilon: a confident example's gradient (~1e-11) would be scaled by far less than the others'.
 */
function l1Normalized(g: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => g.div(nonZero(g.abs().mean([1, 2, 3], true))) as tf.Tensor4D);
}

/**
 * Projected gradient ascent from a (random) start; returns the final iterate. `observe` sees each
 * iterate with its evaluation before the step is taken (it must not keep the tensors).
 */
export async function iterate(
  ctx: RunContext,
  setup: GradientSetup,
  cfg: DescentConfig,
  observe?: (point: tf.Tensor4D, e: Evaluation) => void,
): Promise<tf.Tensor4D> {
  const { x, y, targets } = ctx;
  const { eps, alpha } = usableBudget(cfg.norm.name, x.shape, cfg.eps, cfg.alpha);
  let xAdv = cfg.start
    ? projectToBall(cfg.norm, x, cfg.start, eps)
    : startingPoint(cfg.norm, x, eps, cfg.randomStart, ctx.seed());
  let velocity: tf.Tensor4D | undefined = cfg.momentum !== undefined ? tf.zerosLike(x) : undefined;
  for (let step = 0; step < cfg.steps; step++) {
    const e = evaluate(setup, xAdv, y, targets);
    observe?.(xAdv, e);
    const next = tf.tidy(() => {
      let direction = e.grad;
      let v: tf.Tensor4D | undefined;
      if (velocity) {
        v = velocity.mul(cfg.momentum!).add(l1Normalized(e.grad)) as tf.Tensor4D;
        direction = v;
      }
      const moved = xAdv.add(cfg.norm.normalize(direction).mul(alpha)) as tf.Tensor4D;
      return { xAdv: projectToBall(cfg.norm, x, moved, eps), v };
    });
    tf.dispose([e.grad, e.value, e.logits, xAdv, velocity]);
    xAdv = next.xAdv;
    velocity = next.v;
    ctx.progress?.stepDone(step + 1);
    await yieldToEventLoop();
  }
  velocity?.dispose();
  return xAdv;
}

/** `iterate` plus the per-example outcome, choosing the point as `cfg.select` says. */
export async function descend(
  ctx: RunContext,
  setup: GradientSetup,
  cfg: DescentConfig,
): Promise<RunResult> {
  const { y, targets } = ctx;
  let best: BestTracker | undefined;
  const observe =
    cfg.select === 'best'
      ? (point: tf.Tensor4D, e: Evaluation) => {
          best ??= new BestTracker(point, point.shape[0]);
          const ok = isSuccess(e.logits, y, targets);
          best.update(point, e.value, ok, e.logits);
          ok.dispose();
        }
      : undefined;
  const last = await iterate(ctx, setup, cfg, observe);
  const f = evaluateForward(setup, last, y, targets);
  const ok = isSuccess(f.logits, y, targets);
  if (!best) {
    const predicted = predictedClass(f.logits);
    f.logits.dispose();
    return { adv: last, value: f.value, success: ok, predicted };
  }
  best.update(last, f.value, ok, f.logits);
  tf.dispose([f.value, f.logits, ok, last]);
  return best.result();
}

/** Indices (int32) where a bool tensor is false. */
function failedIndices(success: tf.Tensor1D): Int32Array {
  const s = success.dataSync();
  const idx: number[] = [];
  for (let i = 0; i < s.length; i++) if (!s[i]) idx.push(i);
  return Int32Array.from(idx);
}

/**
 * Runs `once` up to `restarts` times (round 0, 1, …); each restart attacks only the examples no
 * run has fooled yet, and an example keeps the first success, else the point with the highest
 * objective. Each round's start is reported to `ctx.progress` with the examples it attacks.
 */
export async function withRestarts(
  ctx: RunContext,
  restarts: number,
  once: (ctx: RunContext, round: number) => Promise<RunResult>,
): Promise<RunResult> {
  ctx.progress?.startRound(0, ctx.x.shape[0]);
  let acc = await once(ctx, 0);
  for (let r = 1; r < restarts; r++) {
    const idx = failedIndices(acc.success);
    if (idx.length === 0) break;
    ctx.progress?.startRound(r, idx.length);
    const at = tf.tensor1d(idx, 'int32');
    const sub = tf.tidy(() => ({
      x: ctx.x.gather(at),
      y: ctx.y.gather(at),
      t: ctx.targets?.gather(at),
    }));
    const res = await once({ ...ctx, x: sub.x, y: sub.y, targets: sub.t }, r);
    const merged = tf.tidy(() => {
      const take = res.success.logicalOr(res.value.greater(acc.value.gather(at)));
      const pos = at.reshape([-1, 1]);
      const chosenAdv = tf.where(exampleMask(take, res.adv), res.adv, acc.adv.gather(at));
      const chosenValue = tf.where(take, res.value, acc.value.gather(at));
      const chosenPredicted = tf.where(take, res.predicted, acc.predicted.gather(at));
      return {
        adv: tf.tensorScatterUpdate(acc.adv, pos, chosenAdv) as tf.Tensor4D,
        value: tf.tensorScatterUpdate(acc.value, pos, chosenValue) as tf.Tensor1D,
        success: tf.tensorScatterUpdate(acc.success, pos, res.success) as tf.Tensor1D,
        predicted: tf.tensorScatterUpdate(acc.predicted, pos, chosenPredicted) as tf.Tensor1D,
      };
    });
    tf.dispose([
      at,
      sub.x,
      sub.y,
      sub.t,
      res.adv,
      res.value,
      res.success,
      res.predicted,
      acc.adv,
      acc.value,
      acc.success,
      acc.predicted,
    ]);
    acc = merged;
  }
  return acc;
}
