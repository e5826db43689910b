/** IDX files (MNIST, Fashion-MNIST) from their bytes. */
import { RobustError } from '../util/errors.js';
import type { ImageSet } from './dataset.js';

export const FASHION_CLASSES = [
  't-shirt',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle-boot',
];
/** Every Fashion-MNIST image is 28×28 grey. */
const FASHION_SIZE = 28;

/** Parses an IDX file of unsigned bytes with `dims` dimensions (not gzipped). */
export function parseIdxBytes(
  buf: Uint8Array,
  dims: 1 | 3,
  source: string,
): { shape: number[]; data: Uint8Array } {
  const header = 4 + 4 * dims;
  if (buf.length < 4)
    throw new RobustError(`${source}: ${buf.length} bytes is too short for an IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0);
  if (magic !== 0x800 + dims) {
    throw new RobustError(
      `${source}: wrong IDX magic 0x${magic.toString(16)} (expected 0x${(0x800 + dims).toString(16)})`,
    );
  }
  if (buf.length < header)
    throw new RobustError(`${source}: ${buf.length} bytes is too short for an IDX header`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  if (buf.length !== header + size) {
    throw new RobustError(
      `${source}: expected ${header + size} bytes for shape ${shape.join('×')}, found ${buf.length} (truncated?)`,
    );
  }
  return { shape, data: buf.subarray(header) };
}

/**
 * One (Fashion-)MNIST split from its parsed IDX files. The byte count alone cannot catch dimensions
 * changed with the same product (28×28 written as 14×56, count and height swapped): those would
 * load and then break training, so the image size and the label count are checked here.
 */
export function idxImageSet(
  imgs: { shape: number[]; data: Uint8Array },
  lbls: { shape: number[]; data: Uint8Array },
  imagesFile: string,
  labelsFile: string,
): ImageSet {
  const [count, height, width] = imgs.shape;
  if (height !== FASHION_SIZE || width !== FASHION_SIZE) {
    throw new RobustError(
      `${imagesFile}: dimensions ${imgs.shape.join('×')}, but (Fashion-)MNIST images are N×${FASHION_SIZE}×${FASHION_SIZE} (a changed or different IDX header)`,
    );
  }
  if (lbls.shape[0] !== count)
    throw new RobustError(`${labelsFile}: ${lbls.shape[0]} labels for ${count} images`);
  const bad = lbls.data.findIndex((l) => l > 9);
  if (bad >= 0)
    throw new RobustError(`${labelsFile}: label ${lbls.data[bad]} at ${bad} is outside 0–9`);
  return { images: imgs.data, labels: lbls.data, count, height, width, channels: 1 };
}
