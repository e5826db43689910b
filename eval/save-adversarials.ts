/**
 * Saving adversarial examples: 8-bit images in the data set's own binary layout (CIFAR-10 batch
 * records, or IDX for Fashion-MNIST) and a PNG grid of originals / perturbations / adversarials.
 */
import type { ImageSet } from '../data/dataset.js';
import { writeFilesAtomic } from '../util/atomic.js';
import type { AttackOutputs } from './output-files.js';
import { adversarialGrid } from './gallery.js';

export { quantize } from './gallery.js';

/** CIFAR-10 binary records: 1 label byte + 3×32×32 channel-major pixels each. */
function encodeCifar(set: ImageSet): Uint8Array {
  const { height: h, width: w, channels: c } = set;
  const plane = h * w;
  const rec = 1 + c * plane;
  const out = new Uint8Array(set.count * rec);
  for (let n = 0; n < set.count; n++) {
    out[n * rec] = set.labels[n];
    const src = n * plane * c;
    for (let p = 0; p < plane; p++)
      for (let k = 0; k < c; k++) out[n * rec + 1 + k * plane + p] = set.images[src + p * c + k];
  }
  return out;
}

function idxHeader(magic: number, dims: number[]): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, magic);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  return head;
}

/** IDX files (as Fashion-MNIST ships them): images [N,H,W] (0x803) and labels [N] (0x801). */
function encodeIdx(set: ImageSet): { images: Uint8Array; labels: Uint8Array } {
  const imgHead = idxHeader(0x803, [set.count, set.height, set.width]);
  const labHead = idxHeader(0x801, [set.count]);
  const images = new Uint8Array(imgHead.length + set.images.length);
  images.set(imgHead);
  images.set(set.images, imgHead.length);
  const labels = new Uint8Array(labHead.length + set.count);
  labels.set(labHead);
  labels.set(set.labels, labHead.length);
  return { images, labels };
}

/** Whether a set's layout keeps its labels in a file of their own (IDX) rather than in each record (CIFAR-10). */
export const hasLabelFile = (channels: number) => channels !== 3;

/** `set` in the layout of its data set: CIFAR-10 records for 3-channel images, IDX images + labels for 1-channel ones. */
function encodeImageSet(set: ImageSet): { images: Uint8Array; labels?: Uint8Array } {
  return hasLabelFile(set.channels) ? encodeIdx(set) : { images: encodeCifar(set) };
}

/**
 * Writes an attack's outputs as one set (all replaced or, on a failure such as a full disk, none):
 * the adversarial images `adv` of `clean` in the data set's layout, and the PNG grid of `shown`.
 */
export function saveAdversarials(
  out: AttackOutputs,
  clean: ImageSet,
  adv: Uint8Array,
  shown: number[],
): void {
  const files: [string, Uint8Array][] = [];
  if (out.images !== undefined) {
    const { images, labels } = encodeImageSet({ ...clean, images: adv });
    files.push([out.images, images]);
    if (labels) files.push([out.labels!, labels]);
  }
  if (out.grid !== undefined) files.push([out.grid, adversarialGrid(clean, adv, shown)]);
  writeFilesAtomic(files);
}
