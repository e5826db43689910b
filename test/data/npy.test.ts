/** The .npy reader: NEP 1 headers, every plain dtype and byte order, and hostile files. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { elementReader, parseNpy, readNpyFile } from '../../data/npy.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';
import { npy, write, type Descr } from './fixtures.js';

const DESCRS: Descr[] = [
  '|u1',
  '|i1',
  '<i2',
  '>i2',
  '<i4',
  '>i4',
  '<i8',
  '>i8',
  '<u2',
  '>u2',
  '<u4',
  '>u4',
  '<u8',
  '>u8',
  '<f4',
  '>f4',
  '<f8',
  '>f8',
  '|b1',
];

/** A value of `descr`'s range (floats: any finite float32 for f4). */
function valueOf(descr: Descr): fc.Arbitrary<number> {
  const kind = descr[1];
  const bits = Number(descr.slice(2)) * 8;
  if (kind === 'f')
    return bits === 32 ? fc.float({ noNaN: true }).map(Math.fround) : fc.double({ noNaN: true });
  if (kind === 'b') return fc.integer({ min: 0, max: 1 });
  const span = Math.min(bits, 52); // 64-bit values beyond 2^53 are not exact as JS numbers
  if (kind === 'u') return fc.integer({ min: 0, max: 2 ** span - 1 });
  return fc.integer({ min: -(2 ** (span - 1)), max: 2 ** (span - 1) - 1 });
}

describe('.npy round trips', () => {
  it('every plain dtype, both byte orders, versions 1–3, shapes of 0 to 4 dims read back exactly (property)', () => {
    const arb = fc
      .record({
        descr: fc.constantFrom(...DESCRS),
        shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
        version: fc.constantFrom(1 as const, 2 as const, 3 as const),
      })
      .chain(({ descr, shape, version }) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return fc.record({
          descr: fc.constant(descr),
          shape: fc.constant(shape),
          version: fc.constant(version),
          values: fc.array(valueOf(descr), { minLength: n, maxLength: n }),
        });
      });
    fc.assert(
      fc.property(arb, ({ descr, shape, version, values }) => {
        const a = parseNpy(npy(descr, shape, { values }, { version }), 'a.npy');
        expect(a.header.shape).toEqual(shape);
        expect(a.header.dtype.descr).toBe(descr);
        expect(a.header.version).toBe(`${version}.0`);
        const get = elementReader(a);
        expect(Array.from({ length: values.length }, (_, i) => get(i))).toEqual(values);
      }),
      { numRuns: 300 },
    );
  });

  it('reads from a file: header first, then exactly the bytes it announces', () => {
    const dir = tmpDir('npy-file');
    const f = write(
      path.join(dir, 'x.npy'),
      npy('<f8', [2, 3], { values: [0, 0.5, 1, 0.25, 0.75, 1e-9] }),
    );
    const a = readNpyFile(f);
    expect(a.header.shape).toEqual([2, 3]);
    expect(elementReader(a)(5)).toBe(1e-9);
  });
});

describe('.npy hostile files: one line naming the file, before anything large is allocated', () => {
  const good = npy('|u1', [2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]));
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'wrong magic',
      Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x5a, 1, 0, 0, 0]),
      /not a \.npy file \(no \\x93NUMPY magic\)/,
    ],
    ['a text file', Buffer.from('x,y\n1,2\n'), /not a \.npy file/],
    ['empty', new Uint8Array(0), /not a \.npy file/],
    ['cut inside the magic', good.subarray(0, 4), /truncated \.npy file/],
    ['cut inside the header', good.subarray(0, 40), /truncated \.npy header/],
    ['cut inside the data', good.subarray(0, good.length - 2), /4 bytes follow it \(truncated\)/],
    [
      'a longer tail than the shape',
      Buffer.concat([good, Buffer.from([7, 8])]),
      /a header that does not match its data/,
    ],
    [
      'a header lying about the shape',
      npy('|u1', [3, 3], Uint8Array.from([1, 2, 3, 4, 5, 6])),
      /shape \(3, 3\) of \|u1, 9 bytes, but 6 bytes follow/,
    ],
    [
      'a 10^9-element shape over 10 bytes',
      npy('<f4', [1_000_000_000], new Uint8Array(10)),
      /4000000000 bytes, but 10 bytes follow/,
    ],
    [
      'a shape beyond any memory',
      npy('<f8', [100_000, 100_000, 100_000], new Uint8Array(8)),
      /is 1000000000000000 elements .* more than robust reads/,
    ],
    [
      'format version 4',
      (() => {
        const b = Buffer.from(good);
        b[6] = 4;
        return b;
      })(),
      /version 4\.0: robust reads versions 1 to 3/,
    ],
    [
      'Fortran order',
      npy('<f4', [2, 2], { values: [1, 2, 3, 4] }, { fortran: true }),
      /Fortran-order .* refused/,
    ],
    ['an object array (pickle)', npy('|O', [2], new Uint8Array(16)), /an object array .* refused/],
    [
      'a structured dtype',
      npy('', [2], new Uint8Array(8), {
        header: "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }",
      }),
      /structured dtype/,
    ],
    ['a unicode string dtype', npy('<U5', [2], new Uint8Array(40)), /dtype '<U5' is not a plain/],
    ['a float16 dtype', npy('<f2', [2], new Uint8Array(4)), /dtype '<f2' is not a plain/],
    [
      'an extra header key',
      npy('|u1', [1], new Uint8Array(1), {
        header: "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), 'x': 1}",
      }),
      /keys descr,fortran_order,shape,x/,
    ],
    [
      'a missing header key',
      npy('|u1', [1], new Uint8Array(1), { header: "{'descr': '|u1', 'shape': (1,)}" }),
      /keys descr,shape, not/,
    ],
    [
      'a negative dimension',
      npy('|u1', [1], new Uint8Array(1), {
        header: "{'descr': '|u1', 'fortran_order': False, 'shape': (-1,), }",
      }),
      /not a tuple of non-negative integers/,
    ],
    [
      'a list as shape',
      npy('|u1', [1], new Uint8Array(1), {
        header: "{'descr': '|u1', 'fortran_order': False, 'shape': [1], }",
      }),
      /not a tuple/,
    ],
    [
      'Python code in the header',
      npy('|u1', [1], new Uint8Array(1), {
        header: "{'descr': __import__('os').system('x'), 'fortran_order': False, 'shape': (1,)}",
      }),
      /not a \.npy header numpy writes \(an unexpected character/,
    ],
    [
      'a header nested 100 deep',
      npy('|u1', [1], new Uint8Array(1), { header: '('.repeat(100) + ')'.repeat(100) }),
      /nested too deeply/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => {
      let err: unknown;
      try {
        parseNpy(bytes, 'bad.npy');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RobustError);
      expect((err as Error).message).toMatch(/^bad\.npy: /);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
    });
  }

  it('a file whose header asks for 4 GB is refused without reading or allocating it', () => {
    const dir = tmpDir('npy-huge');
    const f = write(path.join(dir, 'x.npy'), npy('<f4', [1_000_000_000], new Uint8Array(64)));
    const before = process.memoryUsage().arrayBuffers;
    expect(() => readNpyFile(f)).toThrow(
      /x\.npy: the header says shape \(1000000000\) of <f4, 4000000000 bytes, but 64 bytes follow/,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
  });

  it('any bytes after the magic give an array consistent with its header or a RobustError (property)', () => {
    const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(1, 2, 3), (tail, v) => {
        const bytes = Uint8Array.from([...magic, v, 0, ...tail]);
        try {
          const a = parseNpy(bytes, 'fuzz.npy');
          expect(a.data.byteLength).toBe(a.header.count * a.header.dtype.size);
        } catch (e) {
          expect(e).toBeInstanceOf(RobustError);
        }
      }),
      { numRuns: 2000 },
    );
    // and real headers with random corruption
    const real = npy('<f4', [3, 2], { values: [0, 0.1, 0.2, 0.3, 0.4, 0.5] });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: real.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        (at, b) => {
          const bytes = Uint8Array.from(real);
          bytes[at] = b;
          try {
            const a = parseNpy(bytes, 'fuzz.npy');
            expect(a.data.byteLength).toBe(a.header.count * a.header.dtype.size);
          } catch (e) {
            expect(e).toBeInstanceOf(RobustError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a FIFO or a link to /dev/zero named as the .npy is refused as not a regular file', () => {
    const dir = tmpDir('npy-special');
    const link = path.join(dir, 'x.npy');
    fs.symlinkSync('/dev/zero', link);
    expect(() => readNpyFile(link)).toThrow(
      /is a character device; a \.npy file must be a regular file/,
    );
  });
});
