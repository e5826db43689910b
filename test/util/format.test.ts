import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatDuration, formatEps, formatRate } from '../../util/format.js';
import { TaskProgress } from '../../util/task-progress.js';

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

describe('formatRate and formatDuration', () => {
  it('rates below 1 keep two significant digits, never 0.0; nothing measured is "–"', () => {
    expect([0.0432, 0.5, 0.99, 1, 12.34, 0].map(formatRate)).toEqual([
      '0.043',
      '0.50',
      '0.99',
      '1.0',
      '12.3',
      '–',
    ]);
    fc.assert(
      fc.property(fc.double({ min: 1e-9, max: 1e6, noNaN: true }), (r) => {
        const shown = Number(formatRate(r));
        expect(shown).toBeGreaterThan(0);
        expect(Math.abs(shown - r)).toBeLessThanOrEqual(Math.max(0.05, 0.05 * r));
      }),
    );
  });

  it('durations: seconds, minutes and seconds, hours and minutes', () => {
    expect([0, 42.4, 59.6, 60, 725, 3599.4, 3600, 23873, 360000, NaN].map(formatDuration)).toEqual([
      '0s',
      '42s',
      '1m00s',
      '1m00s',
      '12m05s',
      '59m59s',
      '1h00m',
      '6h38m',
      '100h00m',
      '–',
    ]);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), (s) => {
        const m = /^(?:(\d+)h(\d\d)m|(?:(\d+)m)?(\d+)s)$/.exec(formatDuration(s));
        expect(m).not.toBeNull();
        const back = m![1] ? 3600 * +m![1] + 60 * +m![2] : 60 * +(m![3] ?? 0) + +m![4];
        expect(Math.abs(back - s)).toBeLessThanOrEqual(s >= 3599.5 ? 30 : 0.5);
      }),
    );
  });
});

describe('TaskProgress lines (not a terminal)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a slow attack shows its rate and an ETA in hours, not "0.0 img/s" and seconds', () => {
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    const tty = process.stderr.isTTY;
    process.stderr.isTTY = false;
    try {
      const p = new TaskProgress('m fab-t eps 8/255', 1000, false);
      now = 2325_000; // 100 images in 2325 s: 0.043 img/s, 900 left: 20925 s
      p.update(100, 'robust 40.0%');
    } finally {
      process.stderr.isTTY = tty;
    }
    expect(lines).toEqual(['m fab-t eps 8/255 100/1000 robust 40.0% 0.043 img/s eta 5h49m\n']);
  });
});
