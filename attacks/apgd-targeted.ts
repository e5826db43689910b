/**
 * APGD-T (Croce & Hein 2020, AutoAttack's second attack): APGD on the targeted DLR loss, run once
 * per target class — the 2nd, 3rd, … most likely classes of the clean image, 9 by default — each
 * run on the examples no earlier run has fooled. As in AutoAttack, a run pulls towards its target
 * but any misclassification counts as success.
 */
import tf from '#tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkOption } from '../util/errors.js';
import {
  checkNumber,
  commonInfo,
  defineAttack,
  type Attack,
  type CommonOptions,
} from './attack.js';
import { apgdNormRun, apgdSettings } from './apgd.js';
import { misclassified, objective } from './losses.js';
import { attackResult, withRestarts } from './iterative.js';

export interface ApgdTargetedOptions extends CommonOptions {
  /** Iterations per target (default 100, as AutoAttack). */
  steps?: number;
  /** How many of the most likely wrong classes to target in turn (default 9; AutoAttack's standard L1 version uses 5). */
  targetClasses?: number;
  rho?: number;
  /** L1 only: the decreasing-eps schedule (default true). */
  largeEps?: boolean;
}

/** Per row, the index of the k-th largest logit (k = 1: the predicted class). */
export function kthLargestClass(logits: tf.Tensor2D, k: number): tf.Tensor1D {
  return tf.tidy(
    () =>
      tf
        .topk(logits, k)
        .indices.slice([0, k - 1], [-1, 1])
        .reshape([-1]) as tf.Tensor1D,
  );
}

export function apgdTargeted(
  model: tf.LayersModel | Classifier,
  o: ApgdTargetedOptions = {},
): Attack {
  checkOption(
    o.targeted === undefined,
    (n) =>
      `apgd-t chooses its own targets (the most likely wrong classes): use ${n('targeted')} with pgd or apgd-ce/dlr`,
  );
  const base = commonInfo('apgd-t', o, 'dlr');
  const steps = o.steps ?? 100;
  checkNumber('steps', steps, { positive: true, integer: true });
  const targetClasses = o.targetClasses ?? 9;
  checkNumber('target classes', targetClasses, { positive: true, integer: true });
  const settings = apgdSettings(base.norm, o);
  const info = {
    ...base,
    steps,
    restarts: 1,
    targetClasses,
    randomStart: true,
    ...(settings.largeEps !== undefined ? { largeEps: settings.largeEps } : {}),
  };
  return defineAttack(model, info, async (ctx) => {
    const { classifier } = ctx;
    check(
      classifier.numClasses >= 4,
      `apgd-t (targeted DLR loss) needs at least 4 classes, the model has ${classifier.numClasses}`,
    );
    const setup = {
      classifier,
      objective: objective('dlr'),
      mode: info.mode,
      eotSamples: info.eotSamples,
    };
    // With fewer classes than targets asked for, every wrong class is targeted once.
    const rounds = Math.min(targetClasses, classifier.numClasses - 1);
    const r = await withRestarts(ctx, rounds, async (c, round) => {
      const targets = tf.tidy(() => kthLargestClass(classifier.logits(c.x, info.mode), round + 2));
      try {
        return await apgdNormRun({ ...c, targets }, setup, info, steps, settings, misclassified);
      } finally {
        targets.dispose();
      }
    });
    return attackResult(r);
  });
}
