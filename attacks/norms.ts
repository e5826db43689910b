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

/**
 * Per-example L2 norms reshaped to [N,1,1,1] for broadcasting, computed on t / max|t| and scaled
 * back: squaring first overflows float32 past |t| ~ 1e19 (the norm became Infinity and a
 * projection by eps / norm zeroed the perturbation) and underflows below ~1e-19.
 */
function l2PerExample(t: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const m = t.abs().max([1, 2, 3], true);
    return t.div(nonZero(m)).square().sum([1, 2, 3], true).sqrt().mul(m) as tf.Tensor4D;
  });
}

/** The largest distance between two images of `shape` ([N,H,W,C]) in [0,1]: a larger eps allows nothing more. */
export function boxDiameter(norm: NormName, shape: number[]): number {
  return norm === 'linf' ? 1 : Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
}

/**
 * eps and step size as the attack loops use them: eps beyond the box's diameter is the diameter
 * (the same set of images), and a step beyond 1e6 diameters is 1e6 diameters (the same point to
 * float32 precision after projection) — so no budget turns into float32 infinity.
 */
export function usableBudget(norm: NormName, shape: number[], eps: number, alpha = eps): { eps: number; alpha: number } {
  const d = boxDiameter(norm, shape);
  return { eps: Math.min(eps, d), alpha: Math.min(alpha, 1e6 * d) };
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
  measure: (delta) => l2PerExample(delta).reshape([-1]) as tf.Tensor1D,
};

export function lpNorm(name: NormName): LpNorm {
  return name === 'l2' ? l2 : linf;
}
