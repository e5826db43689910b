/**
 * Fitting an image set to a model's input: size and channels.
 *
 * Resizing is PIL's Image.resize(size, BILINEAR), bit for bit (the resampling torchvision's
 * Resize applies to PIL images): a triangle filter whose support widens with the shrink factor,
 * so shrinking averages every source pixel under an output pixel (antialiasing) instead of
 * sampling two and aliasing; enlarging is plain bilinear with half-pixel centres, as
 * tf.image.resizeBilinear(halfPixelCenters) up to rounding. PIL's fixed-point arithmetic (22-bit
 * weights, horizontal pass then vertical, each rounded to 8 bits) makes it deterministic and
 * comparable with Python pipelines. Gray → RGB repeats the channel; RGB → gray is ITU-R 601 luma
 * with PIL's convert('L') integer weights.
 */
import { optionError, RobustError } from '../util/errors.js';
import type { ImageSet } from './dataset.js';
import { bytesText, DATA_LIMITS } from './limits.js';

export interface FitTarget {
  height: number;
  width: number;
  channels: number;
}

/** What fitting did, for results' metadata: every conversion that changed the pixels a model saw. */
export interface FitInfo {
  from: FitTarget;
  to: FitTarget;
  resize: 'none' | 'pil-bilinear';
  channels: 'none' | 'gray-to-rgb' | 'rgb-to-gray-601';
  /** One line for people ('none' when the set already fitted). */
  description: string;
}

/** PIL's weights are fixed-point with this many fractional bits (32 − 8 − 2). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coefficients {
  /** Per output index: first source index and number of taps. */
  first: Int32Array;
  taps: Int32Array;
  /** ksize fixed-point weights per output index (non-negative: the triangle filter has no negative lobe). */
  weights: Int32Array;
  ksize: number;
}

/** PIL's precompute_coeffs for the bilinear (triangle) filter, then its 8-bit fixed-point rounding. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support is 1, widened when shrinking
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const taps = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const d = Math.abs((x + xmin - center + 0.5) / filterScale);
      k[x] = d < 1 ? 1 - d : 0;
      sum += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    first[xx] = xmin;
    taps[xx] = xmax;
  }
  return { first, taps, weights, ksize };
}

/**
 * Resizes every image of `set` to height × width as PIL's Image.resize(BILINEAR): a horizontal
 * pass then a vertical one, each rounded to 8 bits. Same-size input comes out unchanged.
 */
export function resizeImages(set: ImageSet, height: number, width: number): ImageSet {
  const { height: h, width: w, channels: c, count } = set;
  checkSize(count, height, width, c);
  const { first: hFirst, taps: hTaps, weights: hW, ksize: hK } = coefficients(w, width);
  const { first: vFirst, taps: vTaps, weights: vW, ksize: vK } = coefficients(h, height);
  const src = set.images;
  const tmp = new Uint8Array(h * width * c);
  const out = new Uint8Array(count * height * width * c);
  const rowIn = w * c;
  const rowTmp = width * c;
  for (let n = 0; n < count; n++) {
    const base = n * h * rowIn;
    for (let y = 0; y < h; y++) {
      const inRow = base + y * rowIn;
      const tmpRow = y * rowTmp;
      for (let xx = 0; xx < width; xx++) {
        const from = inRow + hFirst[xx] * c;
        const taps = hTaps[xx];
        const kOff = xx * hK;
        for (let k = 0; k < c; k++) {
          let ss = HALF;
          for (let t = 0; t < taps; t++) ss += src[from + t * c + k] * hW[kOff + t];
          // at most 2^21 + 255·2^22 < 2^31 (weights sum to ~2^22): a 32-bit shift is PIL's clip8 index
          const v = ss >> PRECISION_BITS;
          tmp[tmpRow + xx * c + k] = v > 255 ? 255 : v;
        }
      }
    }
    const dst = n * height * rowTmp;
    for (let yy = 0; yy < height; yy++) {
      const from = vFirst[yy] * rowTmp;
      const taps = vTaps[yy];
      const kOff = yy * vK;
      const outRow = dst + yy * rowTmp;
      for (let i = 0; i < rowTmp; i++) {
        let ss = HALF;
        for (let t = 0; t < taps; t++) ss += tmp[from + t * rowTmp + i] * vW[kOff + t];
        const v = ss >> PRECISION_BITS;
        out[outRow + i] = v > 255 ? 255 : v;
      }
    }
  }
  return { ...set, images: out, height, width };
}

function checkSize(count: number, height: number, width: number, channels: number): void {
  if (
    !Number.isInteger(height) ||
    !Number.isInteger(width) ||
    height < 1 ||
    width < 1 ||
    height * width > DATA_LIMITS.pixels
  ) {
    throw new RobustError(
      `cannot resize images to ${height}×${width}: the size must be whole pixels, at most ${DATA_LIMITS.pixels} per image`,
    );
  }
  const bytes = count * height * width * channels;
  if (bytes > DATA_LIMITS.bytes)
    throw optionError(
      (n) =>
        `${count} images of ${height}×${width}×${channels} take ${bytesText(bytes)}, more than robust holds in memory (${bytesText(DATA_LIMITS.bytes)}); use fewer images (${n('limit')})`,
    );
}

/** RGB → gray as PIL's convert('L'): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 luma). */
export function rgbToGray(set: ImageSet): ImageSet {
  if (set.channels !== 3)
    throw new RobustError(`rgbToGray takes RGB images, not ${set.channels}-channel ones`);
  const n = set.count * set.height * set.width;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++)
    out[i] =
      (set.images[i * 3] * 19595 +
        set.images[i * 3 + 1] * 38470 +
        set.images[i * 3 + 2] * 7471 +
        0x8000) >>>
      16;
  return { ...set, images: out, channels: 1 };
}

/** Gray → RGB: the one channel repeated, as PIL's convert('RGB'). */
export function grayToRgb(set: ImageSet): ImageSet {
  if (set.channels !== 1)
    throw new RobustError(`grayToRgb takes gray images, not ${set.channels}-channel ones`);
  checkSize(set.count, set.height, set.width, 3);
  const n = set.count * set.height * set.width;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = set.images[i];
  return { ...set, images: out, channels: 3 };
}

const shapeText = (t: FitTarget) => `${t.height}×${t.width}×${t.channels}`;

/**
 * `set` brought to `target`'s size and channels, and what was done. A set that already fits is
 * returned as it is (same object, so its cached fingerprint is kept); a fitted set's fingerprint is
 * that of its new bytes. Channels go RGB → gray before resizing (fewer pixels to resample) and
 * gray → RGB after (the same result either way).
 */
export function fitImages(set: ImageSet, target: FitTarget): { set: ImageSet; fit: FitInfo } {
  const from = { height: set.height, width: set.width, channels: set.channels };
  const to = { height: target.height, width: target.width, channels: target.channels };
  if (to.channels !== 1 && to.channels !== 3)
    throw new RobustError(
      `cannot fit images to ${to.channels} channels: robust converts between gray (1) and RGB (3)`,
    );
  if (from.channels !== 1 && from.channels !== 3)
    throw new RobustError(
      `cannot fit ${from.channels}-channel images: robust converts between gray (1) and RGB (3)`,
    );
  checkSize(set.count, to.height, to.width, to.channels);
  const resize = from.height !== to.height || from.width !== to.width;
  const channels: FitInfo['channels'] =
    from.channels === to.channels ? 'none' : to.channels === 3 ? 'gray-to-rgb' : 'rgb-to-gray-601';
  let out = set;
  if (channels === 'rgb-to-gray-601') out = rgbToGray(out);
  if (resize) out = resizeImages(out, to.height, to.width);
  if (channels === 'gray-to-rgb') out = grayToRgb(out);
  const parts = [
    resize
      ? `resized ${from.height}×${from.width} → ${to.height}×${to.width} (PIL bilinear, antialiased when shrinking)`
      : '',
    channels === 'gray-to-rgb'
      ? 'gray → RGB (channel repeated)'
      : channels === 'rgb-to-gray-601'
        ? "RGB → gray (ITU-R 601 luma, as PIL's convert('L'))"
        : '',
  ].filter(Boolean);
  const description = parts.length
    ? `${shapeText(from)} → ${shapeText(to)}: ${parts.join('; ')}`
    : 'none';
  return {
    set: out,
    fit: { from, to, resize: resize ? 'pil-bilinear' : 'none', channels, description },
  };
}
