import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseIdx } from '../../data/fashion-mnist.js';
import { loadData } from '../../data/index.js';
import { RobustError } from '../../util/errors.js';

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, data]);
}

describe('IDX format', () => {
  it('parses plain and gzipped files', () => {
    const raw = idx([2, 2, 3], Uint8Array.from({ length: 12 }, (_, i) => i));
    for (const buf of [raw, zlib.gzipSync(raw)]) {
      const { shape, data } = parseIdx(buf, 3, 'f');
      expect(shape).toEqual([2, 2, 3]);
      expect(data[11]).toBe(11);
    }
  });

  it('rejects wrong magic numbers and truncated data, naming the file', () => {
    expect(() => parseIdx(idx([3], new Uint8Array(3)), 3, 'labels.gz')).toThrow(/labels\.gz: wrong IDX magic/);
    expect(() => parseIdx(idx([2, 2, 3], new Uint8Array(5)), 3, 'img')).toThrow(/truncated/);
    expect(() => parseIdx(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 1, 'x.gz')).toThrow(/corrupt gzip/);
  });

  it('returns valid data or throws RobustError for any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(1 as const, 3 as const), (bytes, dims) => {
        try {
          const { shape, data } = parseIdx(bytes, dims, 'fuzz');
          expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
        } catch (e) {
          expect(e).toBeInstanceOf(RobustError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('loads the bundled Fashion-MNIST sample', async () => {
    const split = await loadData('fashion-mnist-sample');
    expect(split.train.count).toBe(2000);
    expect(split.test.count).toBe(500);
    expect([split.train.height, split.train.width, split.train.channels]).toEqual([28, 28, 1]);
    expect(new Set(split.train.labels).size).toBe(10);
  });
});
