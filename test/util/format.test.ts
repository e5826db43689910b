import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatDuration, formatEps, formatRate } from '../../util/format.js';
import { LOG_INTERVAL_SECONDS, logInterval, TaskProgress } from '../../util/task-progress.js';
import { RobustError } from '../../util/errors.js';

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

  it('never shows a tiny eps as 0: it would read as the clean column', () => {
    expect([1e-30, 1e-9, 1e-6, 3e-4].map(formatEps)).toEqual([
      '1e-30',
      '1e-9',
      '0.000001',
      '0.0003',
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

/** What TaskProgress writes to stderr while `body` runs on a clock it sets (`at(seconds)`), as a terminal or a log. */
function captured(tty: boolean, body: (at: (seconds: number) => void) => void): string[] {
  let now = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  const saved = process.stderr.isTTY;
  process.stderr.isTTY = tty;
  try {
    body((seconds) => (now = seconds * 1000));
  } finally {
    process.stderr.isTTY = saved;
    vi.restoreAllMocks();
  }
  return lines;
}

describe('TaskProgress lines (not a terminal)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('says where a batch stands inside at most once a minute, with an ETA before the first batch ends', () => {
    expect(LOG_INTERVAL_SECONDS).toBe(60);
    const where = (step: number) =>
      `batch 1/8: target 1/9 · step ${step}/100 · 120/128 still robust`;
    const lines = captured(false, (at) => {
      const p = new TaskProgress('m fab-t eps 8/255', 1000, false);
      // FAB-T at 0.043 img/s: a step of a 128-image batch's 900 every ~3.3 s
      for (let step = 1; step <= 60; step++) {
        at(step * 3.3);
        p.inner((128 * step) / 900, where(step));
      }
      at(300);
      p.update(128, 'robust 40.0%'); // the batch line, whatever the time
      at(330);
      p.inner(128 + 12.8, 'batch 2/8: target 1/9 · step 90/100 · 100/128 still robust');
      at(361);
      p.inner(128 + 12.9, 'batch 2/8: target 1/9 · step 91/100 · 100/128 still robust');
    });
    expect(lines).toEqual([
      // the first step 60 s in (step 19, at 62.7 s: 2.7 images done), then 60 s after each line
      'm fab-t eps 8/255 0/1000 batch 1/8: target 1/9 · step 19/100 · 120/128 still robust · 0.043 img/s eta 6h26m\n',
      'm fab-t eps 8/255 0/1000 batch 1/8: target 1/9 · step 38/100 · 120/128 still robust · 0.043 img/s eta 6h25m\n',
      'm fab-t eps 8/255 0/1000 batch 1/8: target 1/9 · step 57/100 · 120/128 still robust · 0.043 img/s eta 6h24m\n',
      'm fab-t eps 8/255 128/1000 robust 40.0% 0.43 img/s eta 34m04s\n',
      // 61 s after the batch line, not after the last inner one
      'm fab-t eps 8/255 128/1000 robust 40.0% · batch 2/8: target 1/9 · step 91/100 · 100/128 still robust · 0.39 img/s eta 36m41s\n',
    ]);
  });

  it('ROBUST_PROGRESS_SECONDS shortens the interval; anything but a number of seconds > 0 is refused in one line', () => {
    expect(logInterval(undefined)).toBe(60);
    expect(logInterval('0.5')).toBe(0.5);
    expect(logInterval('5')).toBe(5);
    expect(logInterval('1e-3')).toBe(0.001);
    expect(logInterval('1E3')).toBe(1000);
    for (const bad of ['0', '-1', 'abc', '1e400', 'Infinity', '0x10', '1,5', '1e'])
      expect(() => logInterval(bad), bad).toThrow(RobustError);
    expect(() => logInterval('soon')).toThrow(
      /^ROBUST_PROGRESS_SECONDS must be a number of seconds > 0, got 'soon'$/,
    );
    vi.stubEnv('ROBUST_PROGRESS_SECONDS', '2');
    try {
      const lines = captured(false, (at) => {
        const p = new TaskProgress('m square eps 8/255', 100, false);
        for (let s = 1; s <= 5; s++) {
          at(s);
          p.inner(s, `batch 1/1: query ${s * 100}/5000 · 90/100 still robust`);
        }
      });
      expect(lines.map((l) => l.match(/query \d+/)![0])).toEqual(['query 200', 'query 400']);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('quiet: nothing, not even a refusal of a bad interval', () => {
    vi.stubEnv('ROBUST_PROGRESS_SECONDS', 'x');
    try {
      const lines = captured(false, (at) => {
        const p = new TaskProgress('m', 10, true);
        at(1000);
        p.inner(1, 'batch 1/1: step 1/10 · 1/1 still robust');
        p.update(10, 'robust 0%');
      });
      expect(lines).toEqual([]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('a slow attack shows its rate and an ETA in hours, not "0.0 img/s" and seconds', () => {
    const lines = captured(false, (at) => {
      const p = new TaskProgress('m fab-t eps 8/255', 1000, false);
      at(2325); // 100 images in 2325 s: 0.043 img/s, 900 left: 20925 s
      p.update(100, 'robust 40.0%');
    });
    expect(lines).toEqual(['m fab-t eps 8/255 100/1000 robust 40.0% 0.043 img/s eta 5h49m\n']);
  });
});

describe('TaskProgress bar (a terminal)', () => {
  it('shows where the batch stands, with the speed and ETA it gives, before the first batch ends', () => {
    const lines = captured(true, (at) => {
      const p = new TaskProgress('m fab-t eps 8/255', 1000, false);
      at(100);
      p.inner(4, 'batch 1/8: target 2/9 · step 12/100 · 120/128 still robust');
      p.stop(); // draws the last state
    });
    const drawn = lines.join('');
    expect(drawn).toContain(
      '0/1000 0.040 img/s eta 6h55m batch 1/8: target 2/9 · step 12/100 · 120/128 still robust',
    );
    // the speed and ETA fit an 80-column terminal (it cuts, line wrap off), whatever the status after them
    const line = drawn.split('\u001b[1G').at(-1)!;
    expect(line.indexOf('eta 6h55m') + 'eta 6h55m'.length).toBeLessThanOrEqual(80);
  });
});
