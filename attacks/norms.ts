/**
 * The threat models. Gradient attacks share one loop; the Lp ball only decides how a gradient
 * becomes a step (`normalize`), how a perturbation is pulled back into the ball (`project`) and
 * where a random start lands (`randomStart`). All functions work per example on NHWC batches.
 */
import * as tf from '@tensorflow/tfjs';

export type NormName = 'linf' | 'l2';
export const NORMS: NormName[] = ['linf', 'l2'];

export interface LpNorm {
  name: NormName;
  /** The steepest-ascent direction of unit norm for gradient `g`. */
  normalize(g: tf.Tensor4D): tf.Tensor4D;
  /** The closest perturbation to `delta` inside the eps-ball. */
  project(delta: tf.Tensor4D, eps: number): tf.Tensor4D;
  /** A perturbation drawn uniformly from the eps-ball. */
  randomStart(shape: [number, number, number, number], eps: number, seed: number): tf.Tensor4D;
  /** Per-example norms of a perturbation, shape [N]. */
  measure(delta: tf.Tensor4D): tf.Tensor1D;
}

const TINY = 1e-12;

/** `t` with its zeros replaced by 1, so dividing by it leaves an all-zero example at zero. */
export function nonZero(t: tf.Tensor): tf.Tensor {
  return tf.where(t.greater(0), t, tf.onesLike(t));
}

/** Per-example L2 norms reshaped to [N,1,1,1] for broadcasting. */
function l2PerExample(t: tf.Tensor4D): tf.Tensor4D {
  return t.square().sum([1, 2, 3], true).sqrt() as tf.Tensor4D;
}

export const linf: LpNorm = {
  name: 'linf',
  normalize: (g) => g.sign() as tf.Tensor4D,
  project: (delta, eps) => delta.clipByValue(-eps, eps) as tf.Tensor4D,
  randomStart: (shape, eps, seed) => tf.randomUniform(shape, -eps, eps, 'float32', seed) as tf.Tensor4D,
  measure: (delta) => delta.abs().max([1, 2, 3]) as tf.Tensor1D,
};

export const l2: LpNorm = {
  name: 'l2',
  // Scaled to max |g| = 1 first: a confident example's gradient (~1e-11, its squares ~1e-22) is
  // smaller than TINY, and g/(‖g‖ + TINY) would shrink its step instead of keeping it at alpha.
  normalize: (g) =>
    tf.tidy(() => {
      const unit = g.div(nonZero(g.abs().max([1, 2, 3], true))) as tf.Tensor4D;
      return unit.div(l2PerExample(unit).add(TINY));
    }),
  project: (delta, eps) =>
    tf.tidy(() => {
      const factor = tf.minimum(1, tf.div(eps, l2PerExample(delta).add(TINY)));
      return delta.mul(factor);
    }),
  // Uniform in the ball: a Gaussian direction with radius eps·u^(1/d).
  randomStart: (shape, eps, seed) =>
    tf.tidy(() => {
      const d = shape.slice(1).reduce((a, b) => a * b, 1);
      const dir = tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor4D;
      const u = tf.randomUniform([shape[0], 1, 1, 1], 0, 1, 'float32', seed + 1);
      const radius = u.pow(1 / d).mul(eps);
      return dir.div(l2PerExample(dir).add(TINY)).mul(radius);
    }),
  measure: (delta) => delta.square().sum([1, 2, 3]).sqrt() as tf.Tensor1D,
};

export function lpNorm(name: NormName): LpNorm {
  return name === 'l2' ? l2 : linf;
}
