/**
 * Saving adversarial examples: 8-bit images in the data set's own binary layout (CIFAR-10 batch
 * records, or IDX for Fashion-MNIST) and a PNG grid of originals / perturbations / adversarials.
 */
import { PNG } from 'pngjs';
import type { ImageSet } from '../data/dataset.js';
import type { NormName } from '../attacks/norms.js';
import { writeFilesAtomic } from '../util/atomic.js';
import type { AttackOutputs } from './output-files.js';

/**
 * Rounds adversarial pixels to 8 bits so that a saved example never exceeds the budget it was made
 * under, around the (8-bit) original: Linf clamps each pixel into the ball; L2 and L1, where
 * rounding can add up past eps, shrink an image's perturbation (by bisection on a factor ≤ 1
 * towards the original) until its rounded version is inside.
 */
export function quantize(adv: Float32Array, clean: Uint8Array, norm: NormName, eps: number, pixelsPerImage = adv.length): Uint8Array {
  const out = new Uint8Array(adv.length);
  const e = Math.floor(eps * 255 + 1e-6);
  const rounded = (i: number, f: number) => Math.min(255, Math.max(0, Math.round(clean[i] + f * (adv[i] * 255 - clean[i]))));
  for (let from = 0; from < adv.length; from += pixelsPerImage) {
    const to = Math.min(from + pixelsPerImage, adv.length);
    const size = (f: number) => {
      let s = 0;
      for (let i = from; i < to; i++) {
        const d = (rounded(i, f) - clean[i]) / 255;
        s += norm === 'l2' ? d * d : Math.abs(d);
      }
      return norm === 'l2' ? Math.sqrt(s) : s;
    };
    let f = 1;
    if (norm !== 'linf' && size(1) > eps) {
      let [lo, hi] = [0, 1]; // rounded(·, 0) is the original: inside any budget
      for (let k = 0; k < 30; k++) [lo, hi] = size((lo + hi) / 2) <= eps ? [(lo + hi) / 2, hi] : [lo, (lo + hi) / 2];
      f = lo;
    }
    for (let i = from; i < to; i++) {
      let q = rounded(i, f);
      if (norm === 'linf') q = Math.min(clean[i] + e, Math.max(clean[i] - e, q));
      out[i] = q;
    }
  }
  return out;
}

/** CIFAR-10 binary records: 1 label byte + 3×32×32 channel-major pixels each. */
export function encodeCifar(set: ImageSet): Uint8Array {
  const { height: h, width: w, channels: c } = set;
  const plane = h * w;
  const rec = 1 + c * plane;
  const out = new Uint8Array(set.count * rec);
  for (let n = 0; n < set.count; n++) {
    out[n * rec] = set.labels[n];
    const src = n * plane * c;
    for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) out[n * rec + 1 + k * plane + p] = set.images[src + p * c + k];
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
export function encodeIdx(set: ImageSet): { images: Uint8Array; labels: Uint8Array } {
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
export function encodeImageSet(set: ImageSet): { images: Uint8Array; labels?: Uint8Array } {
  return hasLabelFile(set.channels) ? encodeIdx(set) : { images: encodeCifar(set) };
}

/**
 * Writes an attack's outputs as one set (all replaced or, on a failure such as a full disk, none):
 * the adversarial images `adv` of `clean` in the data set's layout, and the PNG grid of `shown`.
 */
export function saveAdversarials(out: AttackOutputs, clean: ImageSet, adv: Uint8Array, shown: number[]): void {
  const files: [string, Uint8Array][] = [];
  if (out.images !== undefined) {
    const { images, labels } = encodeImageSet({ ...clean, images: adv });
    files.push([out.images, images]);
    if (labels) files.push([out.labels!, labels]);
  }
  if (out.grid !== undefined) files.push([out.grid, adversarialGrid(clean, adv, shown)]);
  writeFilesAtomic(files);
}

/**
 * A PNG with three rows — originals, perturbations (mid-gray = 0, scaled to the largest change)
 * and adversarials — for the examples `which`, each image enlarged `scale` times.
 */
export function adversarialGrid(clean: ImageSet, adv: Uint8Array, which: number[], scale = 3): Uint8Array {
  const { height: h, width: w, channels: c } = clean;
  const per = h * w * c;
  const gap = 2;
  const cellW = w * scale + gap;
  const cellH = h * scale + gap;
  const png = new PNG({ width: Math.max(1, which.length) * cellW + gap, height: 3 * cellH + gap });
  png.data.fill(255);
  let maxDelta = 1;
  for (const n of which) for (let i = 0; i < per; i++) maxDelta = Math.max(maxDelta, Math.abs(adv[n * per + i] - clean.images[n * per + i]));
  const rows = [
    (n: number, i: number) => clean.images[n * per + i],
    (n: number, i: number) => Math.round(127.5 + (127.5 * (adv[n * per + i] - clean.images[n * per + i])) / maxDelta),
    (n: number, i: number) => adv[n * per + i],
  ];
  rows.forEach((pixel, row) => {
    which.forEach((n, col) => {
      for (let y = 0; y < h * scale; y++) {
        for (let x = 0; x < w * scale; x++) {
          const src = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
          const dst = ((gap + row * cellH + y) * png.width + gap + col * cellW + x) * 4;
          for (let k = 0; k < 3; k++) png.data[dst + k] = pixel(n, src + (c === 3 ? k : 0));
          png.data[dst + 3] = 255;
        }
      }
    });
  });
  return PNG.sync.write(png);
}
