/**
 * FGSM (Goodfellow et al. 2015): one step of size eps along the gradient's sign (Linf) or its
 * direction (L2). With `randomStart`, FGSM-RS (Wong et al. 2020): a uniform start in the ball and
 * a step of alpha = 1.25·eps, projected back.
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
import { objective } from './losses.js';
import { lpNorm } from './norms.js';
import { iterate } from './iterative.js';

export interface FgsmOptions extends CommonOptions {
  randomStart?: boolean;
  /** Step size; default eps (plain) or 1.25·eps (random start). */
  alpha?: number;
}

export function fgsm(model: tf.LayersModel | Classifier, o: FgsmOptions = {}): Attack {
  const randomStart = o.randomStart ?? false;
  const info = { ...commonInfo(randomStart ? 'fgsm-rs' : 'fgsm', o), randomStart, steps: 1 };
  const alpha = o.alpha ?? (randomStart ? 1.25 : 1) * info.eps;
  checkNumber('alpha', alpha, { min: 0 });
  const norm = lpNorm(info.norm);
  return defineAttack(model, { ...info, alpha }, async (ctx) => {
    const setup = {
      classifier: ctx.classifier,
      objective: objective('ce'),
      mode: info.mode,
      eotSamples: info.eotSamples,
    };
    return iterate(ctx, setup, {
      norm,
      eps: info.eps,
      alpha,
      steps: 1,
      randomStart,
      select: 'last',
    });
  });
}
