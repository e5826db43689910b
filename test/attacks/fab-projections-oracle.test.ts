/**
 * The projection sorts by radix on precomputed keys instead of `Array.prototype.sort` with closure
 * comparators; its results must not change by a bit (an AutoAttack run resumes FAB-T cells computed
 * before). The oracle is the implementation as it was, kept here verbatim.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { projectOntoHalfspace, type FabNorm } from '../../attacks/fab-projections.js';
import { stableArgsort } from '../../attacks/stable-argsort.js';

function levelCrossingOld(
  idx: number[],
  breakpoint: (i: number) => number,
  slope: (i: number) => number,
  c: number,
): number {
  idx.sort((i, j) => breakpoint(i) - breakpoint(j));
  let reached = 0;
  let rate = idx.reduce((s, i) => s + slope(i), 0);
  for (const i of idx) {
    if (reached + rate * breakpoint(i) >= c) return (c - reached) / rate;
    reached += slope(i) * breakpoint(i);
    rate -= slope(i);
  }
  return Infinity;
}

function projectOld(
  norm: FabNorm,
  t: Float32Array,
  w: Float32Array,
  b: number,
  out: Float32Array,
): void {
  const d = t.length;
  let c = -b;
  for (let i = 0; i < d; i++) c += w[i] * t[i];
  const sign = c >= 0 ? 1 : -1;
  c *= sign;
  out.fill(0);
  if (c === 0) return;
  const ws = (i: number) => sign * w[i];
  const room = (i: number) => (ws(i) > 0 ? t[i] : 1 - t[i]);
  const idx: number[] = [];
  for (let i = 0; i < d; i++) if (ws(i) !== 0) idx.push(i);
  const toEdge = (i: number) => -Math.sign(ws(i)) * room(i);
  if (norm === 'linf' || norm === 'l2') {
    const linf = norm === 'linf';
    const at = levelCrossingOld(
      idx,
      (i) => (linf ? room(i) : room(i) / Math.abs(ws(i))),
      (i) => (linf ? Math.abs(ws(i)) : ws(i) * ws(i)),
      c,
    );
    for (const i of idx)
      out[i] = -Math.sign(ws(i)) * Math.min(linf ? at : at * Math.abs(ws(i)), room(i));
  } else {
    idx.sort((i, j) => Math.abs(ws(j)) - Math.abs(ws(i)));
    let gap = c;
    for (const i of idx) {
      const full = Math.abs(ws(i)) * room(i);
      if (full >= gap) {
        out[i] = -Math.sign(ws(i)) * (gap / Math.abs(ws(i)));
        return;
      }
      out[i] = toEdge(i);
      gap -= full;
    }
  }
}

/** The bits of a float array, so that −0 ≠ +0 and NaN = NaN in the comparison. */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/**
 * A row: values from a small set (ties in t, in |w| and in the breakpoints), zeros and ±0 in w,
 * box edges in t, or continuous draws (as from an image and a gradient).
 */
const row = (d: fc.Arbitrary<number>) =>
  d.chain((n) =>
    fc.record({
      t: fc.oneof(
        fc.float32Array({ minLength: n, maxLength: n, min: 0, max: 1, noNaN: true }),
        fc.array(fc.constantFrom(0, 1, 0.25, 0.5, 0.75, 1 / 3), { minLength: n, maxLength: n }),
      ),
      w: fc.oneof(
        fc.float32Array({ minLength: n, maxLength: n, min: -1, max: 1, noNaN: true }),
        fc.array(fc.constantFrom(0, -0, 1, -1, 0.5, -0.5, 2, 1e-3, -3e-8, 1e-38), {
          minLength: n,
          maxLength: n,
        }),
        fc.array(
          fc.oneof(
            fc.constant(0),
            fc.float({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true }),
          ),
          { minLength: n, maxLength: n },
        ),
      ),
      shift: fc.oneof(fc.constant(0), fc.double({ min: -3, max: 3, noNaN: true })),
    }),
  );

function same(norm: FabNorm, t: Float32Array, w: Float32Array, b: number): void {
  const want = new Float32Array(t.length).fill(7);
  const got = new Float32Array(t.length).fill(9);
  projectOld(norm, t, w, b, want);
  projectOntoHalfspace(norm, t, w, b, got);
  expect(bits(got)).toEqual(bits(want));
}

describe('projectOntoHalfspace against the comparator-sort implementation', () => {
  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: bitwise equal on random rows with ties and zeros (property)`, () => {
      fc.assert(
        fc.property(row(fc.integer({ min: 1, max: 64 })), ({ t, w, shift }) => {
          const tf32 = Float32Array.from(t);
          const wf32 = Float32Array.from(w);
          const wt = tf32.reduce((s, v, i) => s + v * wf32[i], 0);
          same(norm, tf32, wf32, wt + shift);
        }),
        { numRuns: 400, seed: 19 },
      );
    });

    it(`${norm}: bitwise equal on CIFAR-sized rows (3072 coordinates, quantized pixels)`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          fc.double({ min: -2, max: 2, noNaN: true }),
          fc.constantFrom(0, 0.3),
          (seed, shift, zeros) => {
            let s = seed;
            const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
            // pixels k/255 (many ties), a gradient with a share of exact zeros
            const t = Float32Array.from({ length: 3072 }, () => Math.floor(next() * 256) / 255);
            const w = Float32Array.from({ length: 3072 }, () =>
              next() < zeros ? 0 : (next() - 0.5) * 1e-3,
            );
            const wt = t.reduce((a, v, i) => a + v * w[i], 0);
            same(norm, t, w, wt + shift * 1e-3);
          },
        ),
        { numRuns: 30, seed: 20 },
      );
    });
  }

  it('non-finite weights take the comparator sort and give what it gave', () => {
    for (const norm of ['linf', 'l2', 'l1'] as const)
      for (const odd of [NaN, Infinity, -Infinity]) {
        const t = Float32Array.of(0.2, 0.9, 0.5, 0.5, 0.1);
        const w = Float32Array.of(0.3, odd, -0.5, 0.5, 0);
        for (const b of [0, 0.3, -1]) same(norm, t, w, b);
      }
  });
});

describe('stableArgsort', () => {
  it('orders as the stable comparator sort does, ties in index order, −0 tied with +0 (property)', () => {
    const key = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(0, -0, 1, -1, 0.5, 5e-324, -5e-324, Number.MAX_VALUE, -Number.MAX_VALUE),
    );
    fc.assert(
      fc.property(fc.array(key, { maxLength: 300 }), (keys) => {
        const k = Float64Array.from(keys);
        const want = Array.from(k.keys()).sort((i, j) => k[i] - k[j]);
        const idx = Int32Array.from(k.keys());
        stableArgsort(idx, idx.length, k);
        expect(Array.from(idx)).toEqual(want);
      }),
      { numRuns: 500, seed: 21 },
    );
  });
});
