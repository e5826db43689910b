/** In-memory image data sets: uint8 NHWC pixels and uint8 labels. */
import crypto from 'node:crypto';
export interface ImageSet {
  images: Uint8Array; // [count, height, width, channels], row-major
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

export interface DataSplit {
  name: string;
  classes: string[];
  train: ImageSet;
  test: ImageSet;
  /** Per-channel statistics used by the model's normalization layer, in [0,1] units. */
  mean: number[];
  std: number[];
}

/** The first `n` examples (all when n is undefined or larger). */
export function take(set: ImageSet, n?: number): ImageSet {
  if (n === undefined || n >= set.count) return set;
  const per = set.height * set.width * set.channels;
  return { ...set, images: set.images.subarray(0, n * per), labels: set.labels.subarray(0, n), count: n };
}

// Hashing CIFAR-10's 180 MB takes ~0.5 s: a set is hashed once (a run checks its data on resume and again when it trains).
const fingerprints = new WeakMap<ImageSet, string>();

/** SHA-256 of an image set's pixels, labels and shape: the data identity results and runs are keyed on. */
export function imageSetFingerprint(set: ImageSet): string {
  let h = fingerprints.get(set);
  if (h === undefined) {
    h = crypto
      .createHash('sha256')
      .update(JSON.stringify([set.count, set.height, set.width, set.channels]))
      .update(set.images.subarray(0, set.count * set.height * set.width * set.channels))
      .update(set.labels.subarray(0, set.count))
      .digest('hex');
    fingerprints.set(set, h);
  }
  return h;
}

/** SHA-256 over a training set and its evaluation set. */
export function dataFingerprint(train: ImageSet, test: ImageSet): string {
  return crypto.createHash('sha256').update(imageSetFingerprint(train)).update(imageSetFingerprint(test)).digest('hex');
}
