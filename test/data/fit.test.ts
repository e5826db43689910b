/** fitImages: PIL's bilinear resize and gray↔RGB, recorded for results' metadata (against Pillow's own outputs: pillow.test.ts). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fitImages, grayToRgb, resizeImages } from '../../data/fit.js';
import { imageSetFingerprint, type ImageSet } from '../../data/dataset.js';
import { RobustError } from '../../util/errors.js';

const setOf = (
  images: Uint8Array,
  count: number,
  height: number,
  width: number,
  channels: number,
): ImageSet => ({ images, labels: new Uint8Array(count), count, height, width, channels });

describe('resizeImages', () => {
  it('same size in, same bytes out, through the resampler itself (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(1, 3),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (n, h, w, c, seed) => {
          const px = Uint8Array.from(
            { length: n * h * w * c },
            (_, i) => (i * 2654435761 + seed) % 256,
          );
          expect(Array.from(resizeImages(setOf(px, n, h, w, c), h, w).images)).toEqual(
            Array.from(px),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a constant image stays constant at any size; shrinking 3× averages the stripes it spans instead of sampling them (antialiasing)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (v, h, w, H, W) => {
          const out = resizeImages(setOf(new Uint8Array(h * w).fill(v), 1, h, w, 1), H, W).images;
          expect(out.every((x) => x === v)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
    // columns of 0 and 200, 6 → 2 wide: half-pixel bilinear (tf.image.resizeBilinear) lands on columns 1 and 4 and gives
    // 200, 0 — a pattern that is not in the image; the widened filter gives about their mean
    const stripes = Uint8Array.from({ length: 12 }, (_, i) => (i % 2 ? 200 : 0));
    const out = Array.from(resizeImages(setOf(stripes, 1, 2, 6, 1), 2, 2).images);
    for (const v of out) expect(Math.abs(v - 100)).toBeLessThanOrEqual(25);
  });
  // bit for bit against Pillow's Image.resize(BILINEAR) and convert('L'): test/data/pillow.test.ts (stored outputs)
});

describe('fitImages', () => {
  const px = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => (i * 7) % 256);
  const mnist = setOf(px, 2, 28, 28, 1);

  it('a set that fits comes back as it is (its fingerprint kept), and says so', () => {
    const { set, fit } = fitImages(mnist, { height: 28, width: 28, channels: 1 });
    expect(set).toBe(mnist);
    expect(fit).toEqual({
      from: { height: 28, width: 28, channels: 1 },
      to: { height: 28, width: 28, channels: 1 },
      resize: 'none',
      channels: 'none',
      description: 'none',
    });
  });

  it('gray 28×28 to an RGB 32×32 model: resized, then the channel repeated; recorded; the fingerprint is of the new bytes', () => {
    const { set, fit } = fitImages(mnist, { height: 32, width: 32, channels: 3 });
    expect([set.count, set.height, set.width, set.channels]).toEqual([2, 32, 32, 3]);
    expect(fit.resize).toBe('pil-bilinear');
    expect(fit.channels).toBe('gray-to-rgb');
    expect(fit.description).toBe(
      '28×28×1 → 32×32×3: resized 28×28 → 32×32 (PIL bilinear, antialiased when shrinking); gray → RGB (channel repeated)',
    );
    const resized = resizeImages(mnist, 32, 32);
    expect(Buffer.from(set.images).equals(Buffer.from(grayToRgb(resized).images))).toBe(true);
    expect(imageSetFingerprint(set)).not.toBe(imageSetFingerprint(mnist));
    expect(imageSetFingerprint(set)).toBe(
      imageSetFingerprint({ ...set, images: Uint8Array.from(set.images) }),
    );
    expect(set.labels).toBe(mnist.labels);
  });

  it('RGB to a gray model: ITU-R 601 luma first, then the resize', () => {
    const rgb = grayToRgb(mnist);
    const { set, fit } = fitImages(rgb, { height: 14, width: 14, channels: 1 });
    expect(fit.channels).toBe('rgb-to-gray-601');
    // a gray image made RGB comes back to the same gray (19595 + 38470 + 7471 = 65536)
    expect(Buffer.from(set.images).equals(Buffer.from(resizeImages(mnist, 14, 14).images))).toBe(
      true,
    );
  });

  it('refuses what it cannot do, in one line, before allocating', () => {
    expect(() => fitImages(mnist, { height: 28, width: 28, channels: 4 })).toThrow(RobustError);
    expect(() => fitImages(mnist, { height: 0, width: 28, channels: 1 })).toThrow(
      /cannot resize images to 0×28/,
    );
    expect(() => fitImages(mnist, { height: 2.5, width: 28, channels: 1 })).toThrow(/whole pixels/);
    const many = { ...mnist, count: 100_000 }; // refused on the size alone: the bytes are never read
    expect(() => fitImages(many, { height: 224, width: 224, channels: 3 })).toThrow(
      /100000 images of 224×224×3 take 14 GiB, more than robust holds in memory \(4 GiB\)/,
    );
  });
});
