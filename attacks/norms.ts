/**
 * The threat models. Gradient attacks share one loop; the Lp ball only decides how a gradient
 * becomes a step (`normalize`), how a perturbation is pulled back into the ball (`project`) and
 * where a random start lands (`randomStart`). All functions work per example on NHWC batches.
 */
import tf from '#tfjs';

export type NormName = 'linf' | 'l2' | 'l1';
export const NORMS: NormName[] = ['linf', 'l2', 'l1'];

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
  /**
   * When present, the projection onto the ball ∩ the box (x + result in [0,1]) is not `project`
   * followed by clipping: L1's sparse perturbations would lose most of their budget to the clip.
   */
  projectInBox?(x: tf.Tensor4D, delta: tf.Tensor4D, eps: number): tf.Tensor4D;
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
function boxDiameter(norm: NormName, shape: number[]): number {
  const d = shape.slice(1).reduce((a, b) => a * b, 1);
  return norm === 'linf' ? 1 : norm === 'l2' ? Math.sqrt(d) : d;
}

/**
 * eps and step size as the attack loops use them: eps beyond the box's diameter is the diameter
 * (the same set of images), and a step beyond 1e6 diameters is 1e6 diameters (the same point to
 * float32 precision after projection) — so no budget turns into float32 infinity.
 */
export function usableBudget(
  norm: NormName,
  shape: number[],
  eps: number,
  alpha = eps,
): { eps: number; alpha: number } {
  const d = boxDiameter(norm, shape);
  return { eps: Math.min(eps, d), alpha: Math.min(alpha, 1e6 * d) };
}

export const linf: LpNorm = {
  name: 'linf',
  normalize: (g) => g.sign() as tf.Tensor4D,
  project: (delta, eps) => delta.clipByValue(-eps, eps) as tf.Tensor4D,
  randomStart: (shape, eps, seed) =>
    tf.randomUniform(shape, -eps, eps, 'float32', seed) as tf.Tensor4D,
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

/**
 * Per example, sign(g) on the coordinates whose |g| is among the largest `fraction` of them (at
 * least one; ties at the threshold included), scaled to unit L1 norm: the sparse steepest-ascent
 * step for L1 (Tramèr & Boneh 2019, SLIDE; Croce & Hein 2021, L1-APGD). A per-example fraction is
 * a tensor [N]. The threshold is the value AutoAttack's L1-APGD uses: the ⌊(1 − fraction)·d⌋-th
 * smallest |g|.
 */
export function sparseSign(g: tf.Tensor4D, fraction: number | tf.Tensor1D): tf.Tensor4D {
  return tf.tidy(() => {
    const n = g.shape[0];
    const d = g.size / n;
    const a = g.abs().reshape([n, d]) as tf.Tensor2D;
    const f = typeof fraction === 'number' ? tf.fill([n], fraction) : fraction;
    // ascending index ⌊(1 − f)·d⌋ clamped to [0, d − 1] = descending index d − 1 − that
    const ascending = tf.clipByValue(tf.floor(tf.sub(1, f).mul(d)), 0, d - 1);
    const descending = tf.sub(d - 1, ascending).cast('int32');
    const sorted = tf.topk(a, d).values;
    const threshold = sorted.mul(tf.oneHot(descending, d)).sum(1, true);
    const kept = a.greaterEqual(threshold).logicalAnd(a.greater(0)).cast('float32');
    const signs = g.sign().reshape([n, d]).mul(kept);
    return signs.div(nonZero(kept.sum(1, true))).reshape(g.shape) as tf.Tensor4D;
  });
}

/** Bisection steps of the L1 projection: float32 cannot narrow the bracket [0, max|δ|] past 2^-24 of its width. */
const L1_BISECTIONS = 26;

/**
 * The Euclidean projection of each example of `delta` onto {d : ‖d‖₁ ≤ eps, lo ≤ d ≤ hi}
 * (hi ≥ 0 ≥ lo elementwise; lo = −∞, hi = ∞ for the ball alone). The solution is soft
 * thresholding capped by the box, d = sign(δ)·min(max(|δ| − λ, 0), cap), with λ ≥ 0 the smallest
 * value that meets the budget: λ is bracketed by bisection on the (monotone, piecewise linear)
 * L1 mass, then read off the linear piece it lies on.
 */
export function projectL1(
  delta: tf.Tensor4D,
  eps: number,
  lo?: tf.Tensor4D,
  hi?: tf.Tensor4D,
): tf.Tensor4D {
  return tf.tidy(() => {
    const n = delta.shape[0];
    const d = delta.size / n;
    const a = delta.abs().reshape([n, d]) as tf.Tensor2D;
    const cap =
      lo && hi
        ? (tf.where(delta.greater(0), hi, lo.neg()).reshape([n, d]) as tf.Tensor2D)
        : undefined;
    const mass = (lambda: tf.Tensor) =>
      tf.tidy(() => {
        const shrunk = tf.relu(a.sub(lambda));
        return (cap ? tf.minimum(shrunk, cap) : shrunk).sum(1, true);
      });
    let low = tf.zeros([n, 1]);
    let high = a.max(1, true);
    const massLow0 = mass(low);
    for (let i = 0; i < L1_BISECTIONS; i++) {
      const mid = low.add(high).div(2);
      const over = mass(mid).greater(eps);
      const [nextLow, nextHigh] = [tf.where(over, mid, low), tf.where(over, high, mid)];
      tf.dispose([low, high, mid, over]);
      [low, high] = [nextLow, nextHigh];
    }
    // g(λ) is linear on [low, high] up to float error: interpolate to g(λ) = eps, never past high (feasible)
    const gLow = mass(low);
    const gHigh = mass(high);
    const t = tf
      .where(gLow.greater(gHigh), gLow.sub(eps).div(nonZero(gLow.sub(gHigh))), tf.onesLike(gLow))
      .clipByValue(0, 1);
    const lambda = tf.where(
      massLow0.greater(eps),
      low.add(high.sub(low).mul(t)),
      tf.zerosLike(low),
    );
    const shrunk = tf.relu(a.sub(lambda));
    const size = cap ? tf.minimum(shrunk, cap) : shrunk;
    return delta.sign().mul(size.reshape(delta.shape)) as tf.Tensor4D;
  });
}

/**
 * L1: steps are sparse sign vectors (`sparseSign`, top 1% of coordinates as SLIDE); the
 * projection onto the ball ∩ box is exact (`projectL1` with the box as caps), as in AutoAttack.
 */
export const l1: LpNorm = {
  name: 'l1',
  normalize: (g) => sparseSign(g, 0.01),
  project: (delta, eps) => projectL1(delta, eps),
  projectInBox: (x, delta, eps) =>
    tf.tidy(() => projectL1(delta, eps, x.neg() as tf.Tensor4D, tf.sub(1, x) as tf.Tensor4D)),
  // a Gaussian draw projected onto the ball: AutoAttack's L1 start (mostly on the sphere, sparse)
  randomStart: (shape, eps, seed) =>
    tf.tidy(() => projectL1(tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor4D, eps)),
  measure: (delta) => delta.abs().sum([1, 2, 3]) as tf.Tensor1D,
};

export function lpNorm(name: NormName): LpNorm {
  return name === 'l2' ? l2 : name === 'l1' ? l1 : linf;
}
