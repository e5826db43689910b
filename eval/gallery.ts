/** The gallery of adversarial examples: 8-bit images within the budget, drawn as one PNG. */
import type { ImageSet } from '../data/dataset.js';
import type { NormName } from '../attacks/norms.js';
import { encodePng } from '../util/platform.js';

/**
 * Rounds adversarial pixels to 8 bits so that a saved example never exceeds the budget it was made
 * under, around the (8-bit) original: Linf clamps each pixel into the ball; L2 and L1, where
 * rounding can add up past eps, shrink an image's perturbation (by bisection on a factor ≤ 1
 * towards the original) until its rounded version is inside.
 */
export function quantize(
  adv: Float32Array,
  clean: Uint8Array,
  norm: NormName,
  eps: number,
  pixelsPerImage = adv.length,
): Uint8Array {
  const out = new Uint8Array(adv.length);
  const e = Math.floor(eps * 255 + 1e-6);
  const rounded = (i: number, f: number) =>
    Math.min(255, Math.max(0, Math.round(clean[i] + f * (adv[i] * 255 - clean[i]))));
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
      for (let k = 0; k < 30; k++)
        [lo, hi] = size((lo + hi) / 2) <= eps ? [(lo + hi) / 2, hi] : [lo, (lo + hi) / 2];
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

/**
 * A PNG with three rows — originals, perturbations (mid-gray = 0, scaled to the largest change)
 * and adversarials — for the examples `which`, each image enlarged `scale` times.
 */
export function adversarialGrid(
  clean: ImageSet,
  adv: Uint8Array,
  which: number[],
  scale = 3,
): Uint8Array {
  const { height: h, width: w, channels: c } = clean;
  const per = h * w * c;
  const gap = 2;
  const cellW = w * scale + gap;
  const cellH = h * scale + gap;
  const png = { width: Math.max(1, which.length) * cellW + gap, height: 3 * cellH + gap };
  const data = new Uint8Array(png.width * png.height * 4).fill(255);
  let maxDelta = 1;
  for (const n of which)
    for (let i = 0; i < per; i++)
      maxDelta = Math.max(maxDelta, Math.abs(adv[n * per + i] - clean.images[n * per + i]));
  const rows = [
    (n: number, i: number) => clean.images[n * per + i],
    (n: number, i: number) =>
      Math.round(127.5 + (127.5 * (adv[n * per + i] - clean.images[n * per + i])) / maxDelta),
    (n: number, i: number) => adv[n * per + i],
  ];
  rows.forEach((pixel, row) => {
    which.forEach((n, col) => {
      for (let y = 0; y < h * scale; y++) {
        for (let x = 0; x < w * scale; x++) {
          const src = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
          const dst = ((gap + row * cellH + y) * png.width + gap + col * cellW + x) * 4;
          for (let k = 0; k < 3; k++) data[dst + k] = pixel(n, src + (c === 3 ? k : 0));
          data[dst + 3] = 255;
        }
      }
    });
  });
  return encodePng(png.width, png.height, data);
}
