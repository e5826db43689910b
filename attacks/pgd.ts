/**
 * PGD (Madry et al. 2018): `steps` projected gradient steps from a uniform random start in the
 * eps-ball, with restarts. Per example it returns the first iterate that fools the model, else
 * the one with the highest loss, over all iterates and restarts.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
} from './attack.js';
import { objective, type LossName } from './losses.js';
import { lpNorm } from './norms.js';
import { attackResult, descend, iterate, withRestarts, type DescentConfig } from './iterative.js';

export interface PgdOptions extends CommonOptions {
  /** Step size; default 2.5·eps/steps (Madry et al.), i.e. 2/255 at eps 8/255 and 10 steps. */
  alpha?: number;
  /** Default 10. */
  steps?: number;
  /** Default true. */
  randomStart?: boolean;
  /** Runs from independent random starts (default 1). */
  restarts?: number;
  /** 'ce' (default) or 'dlr'. */
  loss?: LossName;
  /** 'best' (default) or 'last': plain Madry PGD, the final iterate (adversarial training). */
  select?: DescentConfig['select'];
  /** MI-FGSM's momentum decay; undefined = plain PGD. */
  momentum?: number;
}

export function pgd(model: tf.LayersModel | Classifier, o: PgdOptions = {}, name = 'pgd'): Attack {
  const base = commonInfo(name, o, o.loss ?? 'ce');
  const steps = o.steps ?? 10;
  checkNumber('steps', steps, { positive: true, integer: true });
  const alpha = o.alpha ?? (2.5 * base.eps) / steps;
  checkNumber('alpha', alpha, { min: 0 });
  const restarts = o.restarts ?? 1;
  checkNumber('restarts', restarts, { positive: true, integer: true });
  if (o.momentum !== undefined) checkNumber('momentum', o.momentum, { min: 0 });
  const randomStart = o.randomStart ?? true;
  const info = {
    ...base,
    alpha,
    steps,
    restarts,
    randomStart,
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
  };
  const cfg: DescentConfig = {
    norm: lpNorm(info.norm),
    eps: info.eps,
    alpha,
    steps,
    randomStart,
    momentum: o.momentum,
    select: o.select ?? 'best',
  };
  return defineAttack(model, info, async (ctx) => {
    const setup = {
      classifier: ctx.classifier,
      objective: objective(info.loss),
      mode: info.mode,
      eotSamples: info.eotSamples,
    };
    // One plain run chooses no point: its final iterate goes out unevaluated, and gets its verdict
    // from defineAttack only when the caller wants it (not adversarial training).
    if (restarts === 1 && cfg.select === 'last') return iterate(ctx, setup, cfg);
    return attackResult(await withRestarts(ctx, restarts, (c) => descend(c, setup, cfg)));
  });
}
