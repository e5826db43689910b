/** A short hash of the images and labels a run trains and evaluates on, so a resume can tell another copy of the data. */
import crypto from 'node:crypto';
import type { ImageSet } from '../data/dataset.js';

// Hashing CIFAR-10's 180 MB takes ~0.5 s; a run hashes its data once, at most twice (CLI check, then train).
const cache = new WeakMap<ImageSet, string>();

function hashSet(set: ImageSet): string {
  let h = cache.get(set);
  if (h === undefined) {
    h = crypto
      .createHash('sha256')
      .update(`${set.count}x${set.height}x${set.width}x${set.channels};`)
      .update(set.images.subarray(0, set.count * set.height * set.width * set.channels))
      .update(set.labels.subarray(0, set.count))
      .digest('hex');
    cache.set(set, h);
  }
  return h;
}

/** sha-256 over the train set and the evaluation set, hex. */
export function dataFingerprint(train: ImageSet, test: ImageSet): string {
  return crypto.createHash('sha256').update(hashSet(train)).update(hashSet(test)).digest('hex');
}
