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

/** SHA-256 of an image set's pixels, labels and shape: the data identity results are cached under. */
export function imageSetFingerprint(set: ImageSet): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify([set.count, set.height, set.width, set.channels]));
  h.update(set.images);
  h.update(set.labels);
  return h.digest('hex');
}
