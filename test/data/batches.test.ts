import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { epochBatches, gatherBatch } from '../../data/batches.js';
import type { ImageSet } from '../../data/dataset.js';
import { Rng } from '../../util/rng.js';

function ramp(h: number, w: number, c: number): ImageSet {
  const images = Uint8Array.from({ length: h * w * c }, (_, i) => (i % 250) + 1);
  return { images, labels: new Uint8Array([3]), count: 1, height: h, width: w, channels: c };
}

describe('batches and augmentation', () => {
  it('without augmentation copies pixels scaled to [0,1]', () => {
    const set = ramp(4, 5, 3);
    const out = gatherBatch(set, [0], { cropPad: 0, flip: false }, new Rng(1));
    expect(Array.from(out)).toEqual(
      Array.from(set.images, (v) => v / 255).map((v) => Math.fround(v)),
    );
  });

  it('a random crop is a shift of at most cropPad with zero fill, a flip mirrors columns', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), (seed) => {
        const set = ramp(6, 7, 2);
        const out = gatherBatch(set, [0], { cropPad: 2, flip: true }, new Rng(seed));
        // Find a shift/flip that explains the output exactly.
        const px = (y: number, x: number, k: number) => set.images[(y * 7 + x) * 2 + k] / 255;
        let explained = false;
        for (let dy = -2; dy <= 2 && !explained; dy++)
          for (let dx = -2; dx <= 2 && !explained; dx++)
            for (const flip of [false, true]) {
              let ok = true;
              for (let y = 0; y < 6 && ok; y++)
                for (let x = 0; x < 7 && ok; x++)
                  for (let k = 0; k < 2 && ok; k++) {
                    const sy = y + dy;
                    const sx0 = x + dx;
                    const v =
                      sy < 0 || sy >= 6 || sx0 < 0 || sx0 >= 7
                        ? 0
                        : px(sy, flip ? 6 - sx0 : sx0, k);
                    ok = Math.abs(out[(y * 7 + x) * 2 + k] - v) < 1e-6;
                  }
              if (ok) explained = true;
            }
        expect(explained).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('an epoch visits every example once, in a seeded order', () => {
    const a = epochBatches(103, 16, new Rng(5));
    const b = epochBatches(103, 16, new Rng(5));
    expect(a.length).toBe(7);
    expect(a.map((x) => Array.from(x))).toEqual(b.map((x) => Array.from(x)));
    const all = a.flatMap((x) => Array.from(x)).sort((p, q) => p - q);
    expect(all).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(Array.from(a[0])).not.toEqual(Array.from(epochBatches(103, 16)[0]));
  });
});
