/** ROBUST_WINOGRAD through the real command line: the variant it picks is in the results, a value it does not know is refused. */
import { beforeAll, describe, expect, it } from 'vitest';
import { robust, tinyCheckpoint } from './fixtures.js';

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
  it('attack --json names it: F(4x4) by default, F(2x2) with ROBUST_WINOGRAD=2, direct with 0; not the threads', () => {
    for (const [value, compute, threads] of [
      ['', 'robust kernels, Winograd F(4x4,3x3)', 1],
      ['', 'robust kernels, Winograd F(4x4,3x3)', 2], // the threads change no number
      ['2', 'robust kernels, Winograd F(2x2,3x3)', 1],
      ['0', 'robust kernels, direct convs', 1],
    ] as const) {
      const r = attack({ ROBUST_WINOGRAD: value }, threads);
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
});
