import { describe, expect, it } from 'vitest';
import { formatEps } from '../../util/format.js';

describe('formatEps', () => {
  it('keeps short decimals, writes pixel multiples as k/255', () => {
    expect([0, 0.1, 0.05, 0.3, 8 / 255, 2 / 255, 0.5 / 255, 0.0123456].map(formatEps)).toEqual([
      '0',
      '0.1',
      '0.05',
      '0.3',
      '8/255',
      '2/255',
      '0.5/255',
      '0.01235',
    ]);
  });
});
