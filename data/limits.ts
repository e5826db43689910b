/**
 * Caps on image data read from users' files (folders of images, .npy/.npz arrays), checked before
 * anything of that size is allocated: a header or a folder asking for more is a one-line error,
 * never an out-of-memory. Far above real data sets, far below what exhausts a machine.
 */
import { LIMITS } from '../util/limits.js';

export const DATA_LIMITS = {
  /** Images in one split. */
  images: LIMITS.images,
  /** Pixels (height × width) of one image: 8192 × 8192. */
  pixels: 2 ** 26,
  /** Bytes of one split's uint8 pixels: the largest typed array V8 makes (4 GiB). */
  bytes: 2 ** 32,
  /** Bytes of one image file. */
  imageFileBytes: 256 * 2 ** 20,
  /** Bytes of one .npy/.npz file or member (float64 pixels take 8 bytes each). */
  arrayFileBytes: 2 ** 32,
  /** Classes: labels are stored as bytes. */
  classes: 256,
  /** Folder levels below a class folder (torchvision walks them all; a deeper tree is a mistake). */
  depth: 32,
} as const;

/** "1.5 GiB" / "300 MiB" / "12 bytes", for messages. */
export function bytesText(n: number): string {
  if (n >= 2 ** 30) return `${+(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${+(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} bytes`;
}
