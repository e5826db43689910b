/**
 * The preprocessing a model expects, declared rather than baked in. Attacks and budgets always work
 * on [0,1] pixels; a model that wants [0,255], [-1,1] or mean/std-normalized inputs gets them from a
 * differentiable map in front of it, so eps stays in pixel units whatever the model.
 */
import tf from '#tfjs';
import { optionError, RobustError } from '../util/errors.js';
import { showValue } from '../util/fields.js';

export interface Preprocess {
  /** What pixel values 0 and 1 become (e.g. [0, 255] or [-1, 1]). */
  range: [number, number];
  /** Per channel (or one for all), subtracted after scaling to `range`, in the range's units. */
  mean?: number[];
  /** Per channel (or one for all), divided by after the mean. */
  std?: number[];
}

export const PIXELS: Preprocess = { range: [0, 1] };

// What float32 holds: beyond it a value becomes Infinity (or 0 for 1/std) inside the model.
const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_TINY = 1.1754943508222875e-38;

const NUMBER = /^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?\s*$/i;

function numbers(option: string, v: string): number[] {
  const parts = v.split(',');
  const out = parts.map((p) => (NUMBER.test(p) ? Number(p) : NaN));
  if (out.length === 0 || out.length > 4 || out.some((n) => !(Math.abs(n) <= FLOAT32_MAX)))
    throw optionError(
      (n) =>
        `${n(option)} must be 1 to 4 comma-separated numbers within float32's range, got '${v}'`,
    );
  return out;
}

/** `inputRange`: "0,1", "0,255", "-1,1" or any "lo,hi" with lo < hi. */
export function parseInputRange(v: string): [number, number] {
  const r = numbers('inputRange', v);
  if (r.length !== 2 || !(r[0] < r[1]) || !(r[1] - r[0] <= FLOAT32_MAX))
    throw optionError(
      (n) =>
        `${n('inputRange')} must be lo,hi with lo < hi (e.g. 0,1 or 0,255 or -1,1), got '${v}'`,
    );
  return [r[0], r[1]];
}

/** `mean`: one number or one per channel. */
export const parseMean = (v: string): number[] => numbers('mean', v);

/** `std`: one positive number or one per channel. */
export function parseStd(v: string): number[] {
  const s = numbers('std', v);
  if (s.some((x) => !(x >= FLOAT32_TINY)))
    throw optionError(
      (n) =>
        `${n('std')} values must be positive (at least ${FLOAT32_TINY}, float32's smallest normal), got '${v}'`,
    );
  return s;
}

/** Checks a Preprocess (from the library or a config, not only the flags) and that its lists fit a model with `channels` input channels. */
export function checkPreprocess(p: Preprocess, channels: number, where: string): void {
  const ok = (x: unknown) => typeof x === 'number' && Math.abs(x) <= FLOAT32_MAX;
  const [lo, hi] = Array.isArray(p.range) ? p.range : [NaN, NaN];
  if (
    !Array.isArray(p.range) ||
    p.range.length !== 2 ||
    !ok(lo) ||
    !ok(hi) ||
    !(lo < hi) ||
    !(hi - lo <= FLOAT32_MAX)
  )
    throw new RobustError(
      `${where}: the input range must be [lo, hi] with lo < hi in float32's range, got ${showValue(p.range)}`,
    );
  if (p.mean && (!Array.isArray(p.mean) || !p.mean.every(ok)))
    throw new RobustError(
      `${where}: mean must be numbers in float32's range, got ${showValue(p.mean)}`,
    );
  if (p.std && (!Array.isArray(p.std) || !p.std.every((x) => ok(x) && x >= FLOAT32_TINY)))
    throw new RobustError(
      `${where}: std must be positive numbers in float32's range, got ${showValue(p.std)}`,
    );
  for (const [name, list] of [
    ['mean', p.mean],
    ['std', p.std],
  ] as const) {
    if (list && list.length !== 1 && list.length !== channels)
      throw optionError(
        (n) =>
          `${where}: ${n(name)} has ${list.length} values but the model takes ${channels} channel(s)`,
      );
  }
}

export const isPixels = (p: Preprocess): boolean =>
  p.range[0] === 0 && p.range[1] === 1 && !p.mean && !p.std;

/** One line for results and logs: "inputs in [0,255], mean 123.7,116.3,103.5, std 58.4,57.1,57.4". */
export function describePreprocess(p: Preprocess): string {
  const parts = [`inputs in [${p.range.join(',')}]`];
  if (p.mean) parts.push(`mean ${p.mean.join(',')}`);
  if (p.std) parts.push(`std ${p.std.join(',')}`);
  return parts.join(', ');
}

/** [0,1] pixels (NHWC) → what the model takes, with its per-channel constants made once; `dispose` frees them. */
interface Preprocessor {
  apply(x: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
}

/** The map for `p`: differentiable, the identity for PIXELS; the mean/std tensors live as long as it does, not one per call. */
export function preprocessor(p: Preprocess): Preprocessor {
  if (isPixels(p)) return { apply: (x) => x, dispose: () => {} };
  const [lo, hi] = p.range;
  const mean = p.mean ? tf.tensor1d(p.mean) : undefined;
  const std = p.std ? tf.tensor1d(p.std) : undefined;
  return {
    apply: (x) =>
      tf.tidy(() => {
        let y: tf.Tensor = lo === 0 && hi === 1 ? x : x.mul(hi - lo).add(lo);
        if (mean) y = y.sub(mean);
        if (std) y = y.div(std);
        return y as tf.Tensor4D;
      }),
    dispose: () => tf.dispose([mean, std].filter((t): t is tf.Tensor1D => t !== undefined)),
  };
}
