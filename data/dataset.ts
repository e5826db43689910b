/** In-memory image data sets: uint8 NHWC pixels and uint8 labels. */
import { sha256Hex } from '../util/platform.js';
import { RobustError } from '../util/errors.js';
export interface ImageSet {
  images: Uint8Array; // [count, height, width, channels], row-major
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

export interface DataSplit {
  /** Stable name for reports: a built-in set's name, or the source spec with absolute paths (`folder:/abs/path`). */
  name: string;
  classes: string[];
  train: ImageSet;
  test: ImageSet;
  /** Per-channel statistics used by the model's normalization layer, in [0,1] units. */
  mean: number[];
  std: number[];
  /** The folder the data was read from (its folder, for npz:/npy: files): existing files there are not overwritten by outputs. */
  location?: string;
  /**
   * 'labels' when the source gives label indices but no class names: `classes` is then "0".."k-1"
   * for the largest label k-1 seen, and a model may have more classes (see `withClassCount`).
   */
  classesFrom?: 'labels';
  /** The test split has no labels (all 0): they must come from elsewhere (e.g. a model's predictions) before use. */
  unlabeled?: boolean;
}

/** A set of no images of the given shape (a source without a training split). */
export function emptySet(height: number, width: number, channels: number): ImageSet {
  return {
    images: new Uint8Array(0),
    labels: new Uint8Array(0),
    count: 0,
    height,
    width,
    channels,
  };
}

/** Per-channel mean and standard deviation of a set's pixels, in [0,1] units (for a new model's normalization). */
export function channelStats(set: ImageSet): { mean: number[]; std: number[] } {
  const c = set.channels;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  const n = set.count * set.height * set.width;
  for (let i = 0; i < n * c; i++) {
    const v = set.images[i] / 255;
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  if (n === 0) return { mean: new Array(c).fill(0.5), std: new Array(c).fill(0.25) };
  const mean = Array.from(sum, (s) => s / n);
  // a constant channel would divide by zero in the normalization layer
  const std = Array.from(sq, (s, k) =>
    Math.max(1e-3, Math.sqrt(Math.max(0, s / n - mean[k] ** 2))),
  );
  return { mean: mean.map((m) => +m.toFixed(4)), std: std.map((s) => +s.toFixed(4)) };
}

/**
 * A split whose class names came from its labels ('0'..'k-1'), widened to a model's `n` classes:
 * a test set need not hold an example of the last classes. Refused when a label is n or more.
 */
export function withClassCount(split: DataSplit, n: number): DataSplit {
  if (split.classesFrom !== 'labels' || !Number.isInteger(n) || n === split.classes.length)
    return split;
  if (n < split.classes.length)
    throw new RobustError(
      `${split.name} has label ${split.classes.length - 1}, but the model has ${n} classes`,
    );
  return { ...split, classes: Array.from({ length: n }, (_, i) => String(i)) };
}

/** Refuses a split whose test images have no labels; `why` says what would have given them. */
export function requireLabels(split: DataSplit, why: string): void {
  if (split.unlabeled)
    throw new RobustError(`${split.name} has no labels for its test images (${why})`);
}

/** The first `n` examples (all when n is undefined or larger). */
export function take(set: ImageSet, n?: number): ImageSet {
  if (n === undefined || n >= set.count) return set;
  const per = set.height * set.width * set.channels;
  return {
    ...set,
    images: set.images.subarray(0, n * per),
    labels: set.labels.subarray(0, n),
    count: n,
  };
}

// Hashing CIFAR-10's 180 MB takes ~0.5 s: a set is hashed once (a run checks its data on resume and again when it trains).
const fingerprints = new WeakMap<ImageSet, string>();

/** SHA-256 of an image set's pixels, labels and shape: the data identity results and runs are keyed on. */
export function imageSetFingerprint(set: ImageSet): string {
  let h = fingerprints.get(set);
  if (h === undefined) {
    h = sha256Hex(
      JSON.stringify([set.count, set.height, set.width, set.channels]),
      set.images.subarray(0, set.count * set.height * set.width * set.channels),
      set.labels.subarray(0, set.count),
    );
    fingerprints.set(set, h);
  }
  return h;
}

/** SHA-256 over a training set and its evaluation set. */
export function dataFingerprint(train: ImageSet, test: ImageSet): string {
  return sha256Hex(imageSetFingerprint(train), imageSetFingerprint(test));
}
