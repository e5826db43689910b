/**
 * Training on wasm is bit-for-bit reproducible from its seed on any thread count: a few seeded
 * steps of a ResNet-20 (width 16, batch 64 — its filter gradients and batch-norm sums large enough
 * to be cut into several chunks and shared by 2 threads) end with the same weights on 1 and 2.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { robust } from '../cli/fixtures.js';
import { relaxedMadd } from '../../backend/wasm/relaxed-simd.js';
import { tmpDir } from '../helpers.js';

// the default build: FMA where this machine's engine fuses relaxed SIMD's multiply-add
const F4 = `robust kernels, Winograd F(4x4,3x3)${relaxedMadd() === 'fused' ? ', FMA' : ''}`;

describe('training on wasm does not depend on the thread count', () => {
  it('2 seeded steps of a ResNet-20 on 1 and on 2 threads give the same weights, bit for bit', () => {
    const weights = [1, 2].map((threads) => {
      const out = path.join(tmpDir(`train-threads-${threads}`), 'run');
      const r = robust([
        'train',
        '--data',
        'sample',
        '--model',
        'resnet20',
        '--width',
        '16',
        '--limit',
        '128',
        '--eval-limit',
        '16',
        '--batch-size',
        '64',
        '--epochs',
        '1',
        '--seed',
        '7',
        '--backend',
        'wasm',
        '--threads',
        String(threads),
        '--out',
        out,
      ]);
      expect(r.code, r.stderr).toBe(0);
      // the run really had that many threads (the log line names them)
      expect(r.stdout + r.stderr).toContain(`backend wasm (${F4}) on ${threads} thread`);
      const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
      expect(state.config.compute).toBe(F4);
      return fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin'));
    });
    expect(weights[0].length).toBeGreaterThan(100_000);
    expect(weights[1].equals(weights[0])).toBe(true);
  });
});
