/**
 * FAB (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive boundary
 * attack"), as in AutoAttack. Each step linearizes the decision boundary between the true class
 * and the closest other one (FAB-T: one fixed target class), projects both the current point and
 * the clean image onto that hyperplane inside the box (`fab-projections.ts`), and moves to a
 * mix of the two biased towards the clean image (α ≤ 0.1), overshooting by η = 1.05. When a point
 * is adversarial it is kept if it is the smallest found, and the search backs off towards the
 * clean image (β = 0.9). FAB minimizes the norm: an example counts as fooled only when the
 * smallest adversarial found lies within eps; others are returned unchanged.
 */
import tf from '#tfjs';
import type { Classifier, ModelMode } from '../models/classifier.js';
import { check, checkOption } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
  type RunContext,
} from './attack.js';
import { kthLargestClass } from './apgd-targeted.js';
import { projectOntoHalfspace, type FabNorm } from './fab-projections.js';
import { attackResult, withRestarts, type RunResult } from './iterative.js';
import { usableBudget } from './norms.js';
import { yieldToEventLoop } from '../util/platform.js';
import { inputGrad } from '../backend/ops/gradients.js';

export interface FabOptions extends CommonOptions {
  /** Iterations per run (default 100). */
  steps?: number;
  /** Untargeted runs; restarts after the first start at a random point of radius eps/2 (default 1). */
  restarts?: number;
  /** FAB-T: target each of the this many most likely wrong classes in turn (default: untargeted). */
  targetClasses?: number;
  alphaMax?: number;
  eta?: number;
  beta?: number;
}

interface FabRun {
  classifier: Classifier;
  mode: ModelMode;
  norm: FabNorm;
  eps: number;
  steps: number;
  alphaMax: number;
  eta: number;
  beta: number;
}

/** ‖v‖_p of a row. */
function rowNorm(norm: FabNorm, v: Float32Array, from: number, d: number): number {
  let s = 0;
  for (let i = from; i < from + d; i++) {
    const a = Math.abs(v[i]);
    if (norm === 'linf') s = Math.max(s, a);
    else s += norm === 'l2' ? a * a : a;
  }
  return norm === 'l2' ? Math.sqrt(s) : s;
}

/** The dual norm's ‖g‖_q, which turns a logit gap into a distance to the linearized boundary. */
const dualNorm = (norm: FabNorm, g: Float32Array, from: number, d: number) =>
  rowNorm(norm === 'linf' ? 'l1' : norm === 'l1' ? 'linf' : 'l2', g, from, d);

/**
 * Per example, the boundary FAB projects onto: f_l − f_y and its input gradient for the class l
 * with the nearest linearized boundary (or the target class), as host arrays.
 */
function nearestBoundary(
  r: FabRun,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  targets: tf.Tensor1D | undefined,
): { gap: Float32Array; grad: Float32Array } {
  const n = x.shape[0];
  const d = x.size / n;
  const classes = targets ? [-1] : Array.from({ length: r.classifier.numClasses }, (_, k) => k);
  const gaps: Float32Array[] = [];
  const grads: Float32Array[] = [];
  for (const k of classes) {
    // tensors out of the tidy, read after it: tidy walks what it returns, a typed array index by index
    const [diff, g] = tf.tidy(() => {
      const other = (z: tf.Tensor2D) =>
        k < 0
          ? z.mul(tf.oneHot(targets!, z.shape[1])).sum(1)
          : z.slice([0, k], [-1, 1]).reshape([-1]);
      let gap: tf.Tensor | undefined;
      const grad = inputGrad((xi: tf.Tensor) => {
        const z = r.classifier.logits(xi as tf.Tensor4D, r.mode);
        gap = tf.keep(other(z).sub(z.mul(tf.oneHot(y, z.shape[1])).sum(1)));
        return gap.sum();
      })(x);
      return [gap!, grad];
    });
    gaps.push(diff.dataSync() as Float32Array);
    grads.push(g.dataSync() as Float32Array);
    tf.dispose([diff, g]);
  }
  if (targets) return { gap: gaps[0], grad: grads[0] };
  const yv = y.dataSync();
  const gap = new Float32Array(n);
  const grad = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestDist = Infinity;
    for (const k of classes) {
      if (k === yv[i]) continue;
      const dist = Math.abs(gaps[k][i]) / (1e-12 + dualNorm(r.norm, grads[k], i * d, d));
      if (dist < bestDist) [best, bestDist] = [k, dist];
    }
    gap[i] = gaps[best][i];
    grad.set(grads[best].subarray(i * d, (i + 1) * d), i * d);
  }
  return { gap, grad };
}

/** One FAB run on the examples of `ctx`; `randomStart` starts at a random point of norm eps/2. */
async function fabRun(
  ctx: RunContext,
  r: FabRun,
  targets: tf.Tensor1D | undefined,
  randomStart: boolean,
): Promise<RunResult> {
  const { x, y } = ctx;
  const n = x.shape[0];
  const d = x.size / n;
  const x0 = x.dataSync() as Float32Array;
  const x1 = Float32Array.from(x0);
  if (randomStart) {
    const rng = new Rng(ctx.seed());
    for (let i = 0; i < n; i++) {
      const noise = Float32Array.from({ length: d }, () =>
        r.norm === 'linf'
          ? 2 * rng.next() - 1
          : Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()),
      );
      const scale = (0.5 * r.eps) / rowNorm(r.norm, noise, 0, d);
      for (let j = 0; j < d; j++)
        x1[i * d + j] = Math.min(1, Math.max(0, x0[i * d + j] + scale * noise[j]));
    }
  }
  const best = new Float64Array(n).fill(Infinity); // smallest adversarial perturbation found
  const bound = r.eps * (1 + 1e-6); // within the budget (float32 rounding of the sizes allowed for)
  const labels = y.dataSync();
  // the clean images' classes: a misclassified one is its own adversarial at distance 0, at any eps
  const clean = tf.tidy(() => r.classifier.logits(x, r.mode).argMax(1).dataSync());
  let broken = 0; // examples with an adversarial within the budget: their best only shrinks
  const adv = Float32Array.from(x0);
  const advPredicted = Int32Array.from(clean); // the class of each point kept in adv
  for (let i = 0; i < n; i++)
    if (clean[i] !== labels[i]) {
      best[i] = 0;
      broken++;
    }
  const w = new Float32Array(d);
  const d1 = new Float32Array(d);
  const d2 = new Float32Array(d);
  const delta = new Float32Array(d);
  for (let it = 0; it < r.steps; it++) {
    const x1t = tf.tensor4d(x1, x.shape);
    const { gap, grad } = nearestBoundary(r, x1t, y, targets);
    x1t.dispose();
    for (let i = 0; i < n; i++) {
      const o = i * d;
      // the hyperplane gap + g·(z − x1) = 0, i.e. g·z = g·x1 − gap
      let b = -gap[i];
      for (let j = 0; j < d; j++) b += grad[o + j] * x1[o + j];
      w.set(grad.subarray(o, o + d));
      projectOntoHalfspace(r.norm, x1.subarray(o, o + d), w, b, d1);
      projectOntoHalfspace(r.norm, x0.subarray(o, o + d), w, b, d2);
      const a1 = Math.max(rowNorm(r.norm, d1, 0, d), 1e-8);
      const a2 = Math.max(rowNorm(r.norm, d2, 0, d), 1e-8);
      const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), r.alphaMax);
      for (let j = 0; j < d; j++)
        x1[o + j] = Math.min(
          1,
          Math.max(
            0,
            (x1[o + j] + r.eta * d1[j]) * (1 - alpha) + (x0[o + j] + r.eta * d2[j]) * alpha,
          ),
        );
    }
    const pred = tf.tidy(() =>
      r.classifier.logits(tf.tensor4d(x1, x.shape), r.mode).argMax(1).dataSync(),
    );
    for (let i = 0; i < n; i++) {
      if (pred[i] === labels[i]) continue;
      const o = i * d;
      for (let j = 0; j < d; j++) delta[j] = x1[o + j] - x0[o + j];
      const size = rowNorm(r.norm, delta, 0, d);
      if (size < best[i]) {
        if (size <= bound && !(best[i] <= bound)) broken++;
        best[i] = size;
        adv.set(x1.subarray(o, o + d), o);
        advPredicted[i] = pred[i];
      }
      for (let j = 0; j < d; j++) x1[o + j] = x0[o + j] + delta[j] * r.beta;
    }
    ctx.progress?.stepDone(it + 1, broken);
    await yieldToEventLoop();
  }
  // within the budget only; the rest stay clean, as in the reference
  const within = Array.from(best, (b) => b <= bound);
  for (let i = 0; i < n; i++) {
    if (within[i]) continue;
    adv.set(x0.subarray(i * d, (i + 1) * d), i * d);
    advPredicted[i] = clean[i];
  }
  return {
    adv: tf.tensor4d(adv, x.shape),
    value: tf.tensor1d(Float32Array.from(best, (b) => (Number.isFinite(b) ? -b : -1e30))),
    success: tf.tensor1d(Uint8Array.from(within, Number), 'bool'),
    predicted: tf.tensor1d(advPredicted, 'int32'),
  };
}

export function fab(model: tf.LayersModel | Classifier, o: FabOptions = {}): Attack {
  checkOption(
    o.targeted === undefined,
    (n) =>
      `fab chooses its own targets with ${n('targetClasses')} (FAB-T): ${n('targeted')} does not apply`,
  );
  const targetClasses = o.targetClasses;
  const base = commonInfo(targetClasses ? 'fab-t' : 'fab', o);
  check(
    base.eotSamples === 1,
    'fab does not average gradients over samples: use apgd-ce/apgd-dlr with EOT for randomized models',
  );
  const steps = o.steps ?? 100;
  checkNumber('steps', steps, { positive: true, integer: true });
  const restarts = o.restarts ?? 1;
  checkNumber('restarts', restarts, { positive: true, integer: true });
  if (targetClasses !== undefined)
    checkNumber('target classes', targetClasses, { positive: true, integer: true });
  const alphaMax = o.alphaMax ?? 0.1;
  const eta = o.eta ?? 1.05;
  const beta = o.beta ?? 0.9;
  for (const [k, v] of [
    ['alphaMax', alphaMax],
    ['eta', eta],
    ['beta', beta],
  ] as const)
    checkNumber(k, v, { positive: true });
  const info = {
    ...base,
    steps,
    restarts,
    ...(targetClasses ? { targetClasses } : {}),
    randomStart: restarts > 1,
  };
  return defineAttack(model, info, async (ctx) => {
    const { classifier } = ctx;
    const { eps } = usableBudget(info.norm, ctx.x.shape, info.eps);
    const r: FabRun = {
      classifier,
      mode: info.mode,
      norm: info.norm,
      eps,
      steps,
      alphaMax,
      eta,
      beta,
    };
    // FAB-T: one run per target class (restarts each); FAB: restarts, the first from the clean image
    const rounds = targetClasses
      ? Math.min(targetClasses, classifier.numClasses - 1) * restarts
      : restarts;
    const res = await withRestarts(ctx, rounds, async (c, round) => {
      const random = round % restarts > 0;
      if (!targetClasses) return fabRun(c, r, undefined, random);
      const targets = tf.tidy(() =>
        kthLargestClass(classifier.logits(c.x, info.mode), Math.floor(round / restarts) + 2),
      );
      try {
        return await fabRun(c, r, targets, random);
      } finally {
        targets.dispose();
      }
    });
    return attackResult(res);
  });
}
