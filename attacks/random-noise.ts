/**
 * A black-box baseline: random points on the boundary of the eps-ball (Linf: random corners;
 * L2, L1: random directions), `restarts` draws, keeping the first that fools the model. White-box
 * attacks should always beat it; when they do not, their gradients are probably masked.
 */
import tf from '#tfjs';
import type { Classifier } from '../models/classifier.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
} from './attack.js';
import { evaluateForward } from './gradient.js';
import { isSuccess, objective, predictedClass } from './losses.js';
import { attackResult, projectToBall, withRestarts } from './iterative.js';
import { l1, usableBudget } from './norms.js';

export interface RandomNoiseOptions extends CommonOptions {
  /** Random draws per example (default 10). */
  restarts?: number;
}

export function randomNoise(
  model: tf.LayersModel | Classifier,
  o: RandomNoiseOptions = {},
): Attack {
  const base = commonInfo('random-noise', o);
  const restarts = o.restarts ?? 10;
  checkNumber('restarts', restarts, { positive: true, integer: true });
  const info = { ...base, restarts, randomStart: true };
  return defineAttack(model, info, async (ctx) => {
    const setup = {
      classifier: ctx.classifier,
      objective: objective('ce'),
      mode: info.mode,
      eotSamples: info.eotSamples,
    };
    const r = await withRestarts(ctx, restarts, async (c) => {
      const { eps } = usableBudget(info.norm, c.x.shape, info.eps);
      const adv = tf.tidy(() => {
        const seed = c.seed();
        if (info.norm === 'linf')
          return c.x
            .add(tf.randomUniform(c.x.shape, -1, 1, 'float32', seed).sign().mul(eps))
            .clipByValue(0, 1) as tf.Tensor4D;
        // a Gaussian direction scaled to the sphere, brought into the box (L1: by the exact projection)
        const g = tf.randomNormal(c.x.shape, 0, 1, 'float32', seed) as tf.Tensor4D;
        if (info.norm === 'l2')
          return c.x
            .add(g.div(g.square().sum([1, 2, 3], true).sqrt().add(1e-12)).mul(eps))
            .clipByValue(0, 1) as tf.Tensor4D;
        const onSphere = g
          .div(l1.measure(g).reshape([-1, 1, 1, 1]).add(1e-12))
          .mul(eps) as tf.Tensor4D;
        return projectToBall(l1, c.x, c.x.add(onSphere) as tf.Tensor4D, eps);
      });
      const f = evaluateForward(setup, adv, c.y, c.targets);
      c.progress?.stepDone(1);
      const success = isSuccess(f.logits, c.y, c.targets);
      const predicted = predictedClass(f.logits);
      f.logits.dispose();
      return { adv, value: f.value, success, predicted };
    });
    return attackResult(r);
  });
}
