/**
 * APGD (Croce & Hein 2020, AutoAttack): PGD with momentum 0.75 and a per-example step size that
 * starts at 2·eps and halves at checkpoints (after 22% of the iterations, then intervals shrinking
 * by 3% down to 6%) when fewer than ρ = 75% of the steps since the last checkpoint raised the loss,
 * or when the step size was not reduced last time and the best loss has not improved; a halving
 * restarts that example from its best point. Loss: cross-entropy (APGD-CE) or DLR (APGD-DLR).
 */
import tf from '#tfjs';
import type { Classifier } from '../models/classifier.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
  type RunContext,
} from './attack.js';
import { evaluateForward, type GradientSetup } from './gradient.js';
import { isSuccess, objective, type Criterion, type LossName } from './losses.js';
import { lpNorm, usableBudget, type LpNorm, type NormName } from './norms.js';
import { apgdL1Run } from './apgd-l1.js';
import { adoptUpdate, evaluateStep, improveBest, startRun, type StepUpdate } from './apgd-state.js';
import { check } from '../util/errors.js';
import {
  attackResult,
  exampleMask,
  projectToBall,
  startingPoint,
  withRestarts,
  type RunResult,
} from './iterative.js';
import { yieldToEventLoop } from '../util/platform.js';

export interface ApgdOptions extends CommonOptions {
  /** Iterations (default 100, as AutoAttack). */
  steps?: number;
  restarts?: number;
  /** 'ce' (APGD-CE, default) or 'dlr' (APGD-DLR). */
  loss?: LossName;
  /** Fraction of loss-raising steps below which the step size halves (default 0.75). */
  rho?: number;
  /** L1 only: AutoAttack's 3·eps, 2·eps, eps schedule (default true, as its standard L1 version). */
  largeEps?: boolean;
}

/** The APGD settings shared by APGD-CE/DLR and APGD-T: rho for Linf/L2, the schedule for L1. */
export function apgdSettings(
  norm: string,
  o: { rho?: number; largeEps?: boolean },
): { rho: number; largeEps?: boolean } {
  const rho = o.rho ?? 0.75;
  checkNumber('rho', rho, { min: 0 });
  check(
    o.largeEps === undefined || norm === 'l1',
    'largeEps (the decreasing-eps schedule) is part of L1-APGD only',
  );
  return norm === 'l1' ? { rho, largeEps: o.largeEps ?? true } : { rho };
}

/** One APGD run (from a random start) in the attack's norm: L1 has its own sparse algorithm. */
export function apgdNormRun(
  ctx: RunContext,
  setup: GradientSetup,
  info: { norm: NormName; eps: number },
  steps: number,
  s: { rho: number; largeEps?: boolean },
  success: Criterion = isSuccess,
): Promise<RunResult> {
  if (info.norm === 'l1') return apgdL1Run(ctx, setup, info.eps, steps, success, s.largeEps);
  return apgdRun(ctx, setup, lpNorm(info.norm), info.eps, steps, s.rho, success);
}

/** The iterations at which APGD checks its step size: w₀ = 0, then intervals 0.22·N, shrinking by 0.03·N to at least 0.06·N. */
function apgdCheckpoints(steps: number): number[] {
  const first = Math.max(Math.floor(0.22 * steps), 1);
  const min = Math.max(Math.floor(0.06 * steps), 1);
  const decr = Math.max(Math.floor(0.03 * steps), 1);
  const out: number[] = [];
  for (let at = first, k = first; at <= steps; k = Math.max(k - decr, min), at += k) out.push(at);
  return out;
}

/** One APGD run from a random start; `success` decides which points count as adversarial (default: `isSuccess`). */
async function apgdRun(
  ctx: RunContext,
  setup: GradientSetup,
  norm: LpNorm,
  budget: number,
  steps: number,
  rho: number,
  success: Criterion = isSuccess,
): Promise<RunResult> {
  const { x, y, targets } = ctx;
  const { eps } = usableBudget(norm.name, x.shape, budget);
  const n = x.shape[0];
  const checkpoints = new Set(apgdCheckpoints(steps));
  let xAdv = startingPoint(norm, x, eps, true, ctx.seed());
  let xPrev = xAdv.clone();
  const first = startRun(ctx, setup, xAdv, success);
  const tracker = first.tracker;
  let grad = first.grad;
  let s = {
    step: tf.fill([n, 1, 1, 1], 2 * eps) as tf.Tensor4D,
    ...first.best,
    lossPrev: first.loss.clone(),
    increases: tf.zeros([n]) as tf.Tensor1D,
    lossBestAtCheck: first.loss.clone(),
    reducedAtCheck: tf.ones([n], 'bool') as tf.Tensor1D,
  };
  first.loss.dispose();
  let sinceCheck = 0;
  for (let i = 0; i < steps; i++) {
    const a = i > 0 ? 0.75 : 1;
    const moved = tf.tidy(() => {
      const z = projectToBall(
        norm,
        x,
        xAdv.add(norm.normalize(grad).mul(s.step)) as tf.Tensor4D,
        eps,
      );
      const withMomentum = xAdv
        .add(z.sub(xAdv).mul(a))
        .add(xAdv.sub(xPrev).mul(1 - a)) as tf.Tensor4D;
      return projectToBall(norm, x, withMomentum, eps);
    });
    xPrev.dispose();
    xPrev = xAdv;
    xAdv = moved;
    grad.dispose();
    const { e, ok } = evaluateStep(ctx, setup, xAdv, tracker, success);
    grad = e.grad;
    sinceCheck++;
    const atCheck = checkpoints.has(i + 1);
    const next: StepUpdate<typeof s> = tf.tidy(() => {
      const u = {
        ...improveBest(s, xAdv, grad, e.value),
        lossPrev: e.value.clone(),
        increases: s.increases.add(e.value.greater(s.lossPrev).cast('float32')) as tf.Tensor1D,
      };
      if (!atCheck) return { s: u };
      const oscillating = u.increases.lessEqual(sinceCheck * rho);
      const stalled = u.reducedAtCheck
        .logicalNot()
        .logicalAnd(s.lossBestAtCheck.greaterEqual(u.lossBest));
      const halve = oscillating.logicalOr(stalled);
      const m = exampleMask(halve, xAdv);
      return {
        s: {
          ...u,
          step: tf.where(halve.reshape([-1, 1, 1, 1]), u.step.mul(0.5), u.step) as tf.Tensor4D,
          increases: tf.zerosLike(u.increases) as tf.Tensor1D,
          lossBestAtCheck: u.lossBest.clone(),
          reducedAtCheck: halve as tf.Tensor1D,
        },
        xAdv: tf.where(m, u.xBest, xAdv) as tf.Tensor4D,
        grad: tf.where(m, u.gradBest, grad) as tf.Tensor4D,
      };
    });
    tf.dispose([e.value, e.logits, ok]);
    let restarted: boolean;
    ({ s, xAdv, grad, moved: restarted } = adoptUpdate(s, xAdv, grad, next));
    if (restarted) sinceCheck = 0;
    ctx.progress?.stepDone(i + 1);
    await yieldToEventLoop();
  }
  const f = evaluateForward(setup, xAdv, y, targets);
  const okLast = success(f.logits, y, targets);
  tracker.update(xAdv, f.value, okLast, f.logits);
  tf.dispose([f.value, f.logits, okLast, xAdv, xPrev, grad, ...Object.values(s)]);
  return tracker.result();
}

export function apgd(model: tf.LayersModel | Classifier, o: ApgdOptions = {}): Attack {
  const loss = o.loss ?? 'ce';
  const base = commonInfo(`apgd-${loss}`, o, loss);
  const steps = o.steps ?? 100;
  checkNumber('steps', steps, { positive: true, integer: true });
  const restarts = o.restarts ?? 1;
  checkNumber('restarts', restarts, { positive: true, integer: true });
  const settings = apgdSettings(base.norm, o);
  const info = {
    ...base,
    steps,
    restarts,
    randomStart: true,
    ...(settings.largeEps !== undefined ? { largeEps: settings.largeEps } : {}),
  };
  return defineAttack(model, info, async (ctx) => {
    const setup = {
      classifier: ctx.classifier,
      objective: objective(loss),
      mode: info.mode,
      eotSamples: info.eotSamples,
    };
    return attackResult(
      await withRestarts(ctx, restarts, (c) => apgdNormRun(c, setup, info, steps, settings)),
    );
  });
}
