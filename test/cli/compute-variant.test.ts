/** ROBUST_WINOGRAD and ROBUST_RELAXED_SIMD through the real command line: the variant they pick is in the results, a value they do not know is refused. */
import { beforeAll, describe, expect, it } from 'vitest';
import { robust, tinyCheckpoint } from './fixtures.js';
import { relaxedMadd } from '../../backend/wasm/relaxed-simd.js';

// the default build's suffix: FMA where this machine's engine fuses relaxed SIMD's multiply-add
const FMA = relaxedMadd() === 'fused' ? ', FMA' : '';

let ckpt: string;

beforeAll(async () => {
  ckpt = await tinyCheckpoint('cli-variant');
});

const attack = (env: Record<string, string>, threads = 1) =>
  robust(
    [
      'attack',
      '--fgsm',
      '--model',
      ckpt,
      '--limit',
      '8',
      '--json',
      '--backend',
      'wasm',
      '--threads',
      String(threads),
      '--quiet',
    ],
    env,
  );

describe('the compute variant on the command line', () => {
  it('attack --json names it: F(4x4) by default, F(2x2) with ROBUST_WINOGRAD=2, direct with 0; FMA unless ROBUST_RELAXED_SIMD=0; not the threads', () => {
    for (const [value, relaxed, compute, threads] of [
      ['', '', `robust kernels, Winograd F(4x4,3x3)${FMA}`, 1],
      ['', '', `robust kernels, Winograd F(4x4,3x3)${FMA}`, 2], // the threads change no number
      ['2', '1', `robust kernels, Winograd F(2x2,3x3)${FMA}`, 1],
      ['0', '', `robust kernels, direct convs${FMA}`, 1],
      ['', '0', 'robust kernels, Winograd F(4x4,3x3)', 1],
      ['0', '0', 'robust kernels, direct convs', 2],
    ] as const) {
      const r = attack({ ROBUST_WINOGRAD: value, ROBUST_RELAXED_SIMD: relaxed }, threads);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout);
      expect([j.backend, j.compute]).toEqual(['wasm', compute]);
    }
  });

  it('ROBUST_WINOGRAD=3 and =abc are refused in one line, naming the values it takes', () => {
    for (const value of ['3', 'abc']) {
      const r = attack({ ROBUST_WINOGRAD: value });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `robust: ROBUST_WINOGRAD must be 4 (Winograd F(4x4, 3x3), the default), 2 (F(2x2, 3x3)) or 0 (direct convs); got '${value}'\n`,
      );
    }
  });

  it('ROBUST_RELAXED_SIMD=fma is refused in one line, naming the values it takes', () => {
    const r = attack({ ROBUST_RELAXED_SIMD: 'fma' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "robust: ROBUST_RELAXED_SIMD must be 1 (fused multiply-adds through wasm relaxed SIMD where the engine has them, the default) or 0 (plain wasm SIMD); got 'fma'\n",
    );
  });
});
