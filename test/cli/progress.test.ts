/**
 * `robust attack` and `robust eval` say where a long batch stands before it ends: on a terminal
 * at once, in a log at most every ROBUST_PROGRESS_SECONDS (60 by default); the numbers are the
 * same with progress shown or not.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, missing, tmpDir } from '../helpers.js';
import { robustBatch, tinyCheckpoint } from './fixtures.js';

let ckpt: string;

beforeAll(async () => {
  ckpt = await tinyCheckpoint('cli-progress');
});

/** FAB-T on 8 images in 2 batches of 4, labelled as the model sees them (so all are attacked). */
const fabT = () => [
  'attack',
  '--fab-t',
  '--model',
  ckpt,
  '--labels',
  'predicted',
  '--limit',
  '8',
  '--batch-size',
  '4',
  '--steps',
  '12',
  '--eps',
  '0.2',
  '--backend',
  'wasm',
];

const INNER =
  /^fab-t (\d+)\/8 (?:robust [\d.]+% · )?batch (\d)\/2: target (\d)\/9 · step (\d+)\/12 · (\d)\/(\d) still robust · [\d.–]+ img\/s eta \S+$/;

describe('progress inside a batch', () => {
  it('a log gets where the batch stands every ROBUST_PROGRESS_SECONDS, before the batch ends; the numbers are those of a quiet run', () => {
    const [shortened, log, quiet, bad] = robustBatch([
      { args: fabT(), env: { ROBUST_PROGRESS_SECONDS: '0.3' } },
      { args: [...fabT(), '--json'] },
      { args: [...fabT(), '--json', '--quiet'] },
      { args: fabT(), env: { ROBUST_PROGRESS_SECONDS: 'soon' } },
    ]);
    expect(shortened.code).toBe(0);
    const lines = shortened.stderr.trim().split('\n');
    const inner = lines.filter((l) => INNER.test(l));
    const firstBatch = lines.findIndex((l) =>
      / 4\/8 robust [\d.]+% [\d.]+ img\/s eta \S+$/.test(l),
    );
    expect(firstBatch).toBeGreaterThan(0);
    // the first batch's position was told before it ended, with a speed and an ETA
    const before = lines.slice(0, firstBatch).filter((l) => INNER.test(l));
    expect(before.length, shortened.stderr).toBeGreaterThan(0);
    // (a line at step 0 has no speed yet: "– img/s eta –")
    expect(
      before.some((l) =>
        / 0\/8 batch 1\/2: target \d\/9 · step \d+\/12 · \d\/4 still robust · [\d.]+ img\/s eta \d/.test(
          l,
        ),
      ),
      before.join('\n'),
    ).toBe(true);
    // positions only move forward
    const at = inner.map((l) => {
      const m = INNER.exec(l)!;
      return [+m[2], +m[3], +m[4]];
    });
    for (let i = 1; i < at.length; i++) {
      const [b0, t0, s0] = at[i - 1];
      const [b1, t1, s1] = at[i];
      expect(b1 > b0 || (b1 === b0 && (t1 > t0 || (t1 === t0 && s1 >= s0))), inner.join('\n')).toBe(
        true,
      );
    }
    // at the default 60 s, a run of a few seconds writes no such line; its numbers are a quiet run's
    expect(log.code).toBe(0);
    if (log.ms < 60_000) expect(log.stderr).not.toMatch(/still robust/);
    const numbers = (s: string) => {
      const { seconds: _s, img_per_s: _r, ...rest } = JSON.parse(s);
      return rest;
    };
    expect(numbers(log.stdout)).toEqual(numbers(quiet.stdout));
    expect(quiet.stderr).toBe('');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toBe(
      "robust: ROBUST_PROGRESS_SECONDS must be a number of seconds > 0, got 'soon'\n",
    );
  });

  it('robust eval tells it too, cell by cell; at eps 0 FAB-T has nothing to find and says so at once', () => {
    const out = tmpDir('cli-progress-eval');
    const [r] = robustBatch([
      {
        args: [
          'eval',
          '--models',
          ckpt,
          '--labels',
          'predicted',
          '--attacks',
          'fab-t:12',
          '--eps',
          '0,0.2',
          '--limit',
          '8',
          '--batch-size',
          '4',
          '--backend',
          'wasm',
          '--out',
          out,
        ],
        env: { ROBUST_PROGRESS_SECONDS: '0.3' },
      },
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n');
    const label = `${path.basename(ckpt)} fab-t:12 eps`;
    const first = lines.findIndex((l) => l.startsWith(`${label} 0.2 4/8 robust`));
    const inner = lines
      .slice(0, first)
      .filter((l) =>
        new RegExp(
          `^${label} 0\\.2 0/8 batch 1/2: target \\d/9 · step \\d+/12 · \\d/4 still robust · `,
        ).test(l),
      );
    expect(inner.length, r.stderr).toBeGreaterThan(0);
    // eps 0: the images themselves, every one still robust (all are classified as labelled)
    expect(r.stderr).toMatch(/\] ckpt fab-t:12 eps 0: robust 100\.00% \(\d+ s\)/);
    expect(r.stderr).toMatch(/\] ckpt fab-t:12 eps 0\.2: robust \d+\.\d\d% \(\d+ s\)/);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(missing(hasScript))(
    'on a terminal the bar shows the target, step and an ETA while the first batch runs',
    () => {
      // util-linux script gives the command a terminal; its output is what the terminal got
      const cmd = [process.execPath, path.join(ROOT, 'bin', 'robust.js'), ...fabT()]
        .map((a) => `'${a}'`)
        .join(' ');
      const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
        encoding: 'utf8',
        timeout: 120_000,
        cwd: tmpDir('cli-progress-tty'),
      });
      expect(r.status, r.stdout).toBe(0);
      // each redraw starts with ESC [1G (to column 1)
      const drawn = r.stdout.split('\u001b[1G');
      const firstBatchDone = drawn.findIndex((d) => / 4\/8 robust /.test(d));
      const inner = drawn
        .slice(0, firstBatchDone)
        .filter((d) =>
          / 0\/8 [\d.]+ img\/s eta \d\S* batch 1\/2: target \d\/9 · step \d+\/12 · \d\/4 still robust/.test(
            d,
          ),
        );
      expect(inner.length, r.stdout).toBeGreaterThan(0);
    },
  );
});
