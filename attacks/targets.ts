/** Choosing target classes for targeted attacks. */
import tf from '#tfjs';
import { check, checkOption } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

/** A target class for every example: uniformly random among the wrong classes, the least likely class, or one fixed class. */
export type TargetSpec = 'random' | 'least-likely' | number;

export function parseTargetSpec(v: string): TargetSpec {
  if (v === 'random' || v === 'least-likely') return v;
  const n = /^\d+$/.test(v) ? Number(v) : NaN; // a class index in decimal digits: not '', '0x1' or '1e0'
  checkOption(
    Number.isInteger(n) && n >= 0,
    (o) => `${o('targeted')} must be random, least-likely or a class index, got '${v}'`,
  );
  return n;
}

/**
 * Targets for `labels` (int32 [N]); `logits` are the clean logits (used by least-likely).
 * With a fixed class, examples of that class keep their own label as target.
 */
export function chooseTargets(
  spec: TargetSpec,
  labels: tf.Tensor1D,
  logits: () => tf.Tensor2D,
  numClasses: number,
  rng: Rng,
): tf.Tensor1D {
  if (typeof spec === 'number') {
    check(
      spec < numClasses,
      `target class ${spec} does not exist: the model has ${numClasses} classes`,
    );
    return tf.fill([labels.shape[0]], spec, 'int32') as tf.Tensor1D;
  }
  if (spec === 'least-likely')
    return tf.tidy(() => logits().argMin(1).cast('int32') as tf.Tensor1D);
  check(numClasses >= 2, 'random targets need at least 2 classes');
  const y = labels.dataSync();
  const t = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) t[i] = (y[i] + 1 + rng.int(numClasses - 1)) % numClasses;
  return tf.tensor1d(t, 'int32');
}
