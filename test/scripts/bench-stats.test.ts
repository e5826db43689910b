import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatSummary, median, summarize } from '../../scripts/bench-stats.js';

describe('bench rounds: medians and ratios', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('the ratio is the median of per-round ratios, not the ratio of medians', () => {
    // round 1: 100/200 = 0.5, round 2: 300/100 = 3, round 3: 200/250 = 0.8
    const s = summarize([100, 300, 200], [200, 100, 250]);
    expect(s.ours).toBe(200);
    expect(s.oursRange).toEqual([100, 300]);
    expect(s.torch).toBe(200);
    expect(s.ratio).toBe(0.8);
    expect(s.ratioRange).toEqual([0.5, 3]);
    expect(formatSummary(s)).toBe('200 (100–300)  PyTorch 200 (100–250)  ratio 0.8 (0.5–3)');
  });

  it('no ratio unless PyTorch ran in every round', () => {
    const s = summarize([1.234, 0.0312], [null, 5]);
    expect(s.ratio).toBeUndefined();
    expect(s.oursRange).toEqual([0.0312, 1.23]); // small rates keep 3 significant digits
    expect(formatSummary(s)).not.toContain('PyTorch');
  });

  it('median ratio lies within the per-round range', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: 1, max: 1e4, noNaN: true }),
            fc.double({ min: 1, max: 1e4, noNaN: true }),
          ),
          {
            minLength: 1,
            maxLength: 9,
          },
        ),
        (pairs) => {
          const s = summarize(
            pairs.map((p) => p[0]),
            pairs.map((p) => p[1]),
          );
          expect(s.ratio!).toBeGreaterThanOrEqual(s.ratioRange![0]);
          expect(s.ratio!).toBeLessThanOrEqual(s.ratioRange![1]);
          expect(s.rounds).toBe(pairs.length);
        },
      ),
    );
  });
});
