/**
 * L1-APGD (Croce & Hein 2021, "Mind the box: l1-APGD for sparse adversarial attacks"), as
 * AutoAttack runs it. Unlike Linf/L2 APGD there is no momentum: each step moves eps along the sign
 * of the largest `topk` share of the gradient (`sparseSign`), projected exactly onto the L1 ball ∩
 * the box. Every 4% of the iterations the sparsity adapts to the best point's (topk = its L0 / d /
 * 1.5); an example whose best point became sparser (by 5% or more) restarts there at the full
 * step, the others shrink their step by 1.5 (down to eps/10).
 *
 * AutoAttack's standard L1 version also runs a decreasing-eps schedule ("largereps"): 30% of the
 * iterations at 3·eps, 30% at 2·eps, the rest at eps, each stage starting from the highest-loss
 * point of the one before; only the last stage, at eps, decides success.
 */
import tf from '#tfjs';
import type { RunContext } from './attack.js';
import type { GradientSetup } from './gradient.js';
import { isSuccess, type Criterion } from './losses.js';
import { l1, sparseSign, usableBudget } from './norms.js';
import { exampleMask, projectToBall, startingPoint, type RunResult } from './iterative.js';
import { adoptUpdate, evaluateStep, improveBest, startRun, type StepUpdate } from './apgd-state.js';
import { yieldToEventLoop } from '../util/platform.js';

/** Per example, the number of coordinates where `a` and `b` differ, as float [N]. */
function l0(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => a.notEqual(b).cast('float32').sum([1, 2, 3]) as tf.Tensor1D);
}

interface L1Run {
  result: RunResult;
  /** The highest-loss point per example (where a schedule's next stage starts). */
  xBest: tf.Tensor4D;
}

/**
 * One L1-APGD run at `eps` from `start` (already in the ball ∩ box), or from a random start;
 * `stepsBefore`: the schedule's steps in earlier stages (progress counts the whole schedule).
 */
async function l1Run(
  ctx: RunContext,
  setup: GradientSetup,
  eps: number,
  steps: number,
  success: Criterion,
  start?: tf.Tensor4D,
  stepsBefore = 0,
): Promise<L1Run> {
  const { x } = ctx;
  const n = x.shape[0];
  const d = x.size / n;
  const interval = Math.max(Math.floor(0.04 * steps), 1);
  let xAdv = start
    ? (start.clipByValue(0, 1) as tf.Tensor4D)
    : startingPoint(l1, x, eps, true, ctx.seed());
  const first = startRun(ctx, setup, xAdv, success);
  const tracker = first.tracker;
  let grad = first.grad;
  let s = {
    step: tf.fill([n, 1, 1, 1], eps) as tf.Tensor4D,
    ...first.best,
    // a given start sets the sparsity it has; a random one starts at 20% of the coordinates
    topk: start
      ? (tf.tidy(() => l0(xAdv, x).div(d * 1.5)) as tf.Tensor1D)
      : (tf.fill([n], 0.2) as tf.Tensor1D),
    spOld: start ? l0(xAdv, x) : (tf.fill([n], d) as tf.Tensor1D),
  };
  first.loss.dispose();
  for (let i = 0; i < steps; i++) {
    const moved = tf.tidy(() =>
      projectToBall(l1, x, xAdv.add(sparseSign(grad, s.topk).mul(s.step)) as tf.Tensor4D, eps),
    );
    xAdv.dispose();
    xAdv = moved;
    grad.dispose();
    const { e, ok } = evaluateStep(ctx, setup, xAdv, tracker, success);
    grad = e.grad;
    const atCheck = (i + 1) % interval === 0;
    const next: StepUpdate<typeof s> = tf.tidy(() => {
      const u = improveBest(s, xAdv, grad, e.value);
      if (!atCheck) return { s: u };
      const spCurr = l0(u.xBest, x);
      const sparser = spCurr.div(s.spOld).less(0.95); // 0/0 is NaN: not sparser, as in the reference
      const step = tf
        .where(sparser.reshape([-1, 1, 1, 1]), tf.fill(u.step.shape, eps), u.step.div(1.5))
        .clipByValue(eps / 10, eps) as tf.Tensor4D;
      const m = exampleMask(sparser, xAdv);
      return {
        s: { ...u, step, topk: spCurr.div(d * 1.5) as tf.Tensor1D, spOld: spCurr },
        xAdv: tf.where(m, u.xBest, xAdv) as tf.Tensor4D,
        grad: tf.where(m, u.gradBest, grad) as tf.Tensor4D,
      };
    });
    tf.dispose([e.value, e.logits, ok]);
    ({ s, xAdv, grad } = adoptUpdate(s, xAdv, grad, next));
    ctx.progress?.stepDone(stepsBefore + i + 1);
    await yieldToEventLoop();
  }
  const xBest = s.xBest;
  tf.dispose([xAdv, grad, ...Object.values(s).filter((t) => t !== xBest)]);
  return { result: tracker.result(), xBest };
}

/** The iterations of the decreasing-eps schedule's stages (3·eps, 2·eps, eps): 30%, 30%, the rest. */
export function largeEpsIterations(steps: number): number[] {
  const first = Math.ceil(0.3 * steps);
  return [first, first, steps - 2 * first];
}

/**
 * L1-APGD at `budget`: one run from a random start, or with `largeEps` AutoAttack's 3·eps, 2·eps,
 * eps schedule. With fewer than 3 steps there is no schedule to split them into: one run at eps.
 */
export async function apgdL1Run(
  ctx: RunContext,
  setup: GradientSetup,
  budget: number,
  steps: number,
  success: Criterion = isSuccess,
  largeEps = true,
): Promise<RunResult> {
  const { x } = ctx;
  const epsAt = (k: number) => usableBudget('l1', x.shape, k * budget).eps;
  if (!largeEps || steps < 3) {
    const r = await l1Run(ctx, setup, epsAt(1), steps, success);
    r.xBest.dispose();
    return r.result;
  }
  const iterations = largeEpsIterations(steps);
  // the schedule's start: a Gaussian draw projected onto the 3·eps ball ∩ box
  let start = tf.tidy(() =>
    projectToBall(
      l1,
      x,
      x.add(tf.randomNormal(x.shape, 0, 1, 'float32', ctx.seed())) as tf.Tensor4D,
      epsAt(3),
    ),
  );
  let last: RunResult | undefined;
  let stepsBefore = 0;
  for (const [k, stage] of [3, 2, 1].entries()) {
    const eps = epsAt(stage);
    const inBall = projectToBall(l1, x, start, eps);
    start.dispose();
    const r = await l1Run(ctx, setup, eps, iterations[k], success, inBall, stepsBefore);
    stepsBefore += iterations[k];
    inBall.dispose();
    start = r.xBest;
    if (last) tf.dispose([last.adv, last.value, last.success, last.predicted]);
    last = r.result;
  }
  start.dispose();
  return last!;
}
