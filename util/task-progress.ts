/**
 * Progress of a counted task (attack or evaluation batches): a bar on a terminal, a line every
 * ~10% otherwise. Between those, a long batch may say where it stands inside (`inner`): on the
 * bar at once, in a log at most once a minute.
 */
import cliProgress from 'cli-progress';
import { check } from './errors.js';
import { escapeControls, formatDuration, formatRate } from './format.js';

/** Seconds between a log's lines on where a batch stands inside; ROBUST_PROGRESS_SECONDS sets another. */
export const LOG_INTERVAL_SECONDS = 60;

/** The seconds between inner-position lines in a log: ROBUST_PROGRESS_SECONDS, else LOG_INTERVAL_SECONDS. */
export function logInterval(env: string | undefined = process.env.ROBUST_PROGRESS_SECONDS): number {
  if (env === undefined || env === '') return LOG_INTERVAL_SECONDS;
  const v = Number(env);
  check(
    /^\s*(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(env) && Number.isFinite(v) && v > 0,
    `ROBUST_PROGRESS_SECONDS must be a number of seconds > 0, got '${env}'`,
  );
  return v;
}

export class TaskProgress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine: number;
  private readonly start = performance.now();
  /** When the last line was written (a log), and the seconds the next inner one waits. */
  private lastLineAt = this.start;
  private readonly interval: number = LOG_INTERVAL_SECONDS;
  /** The units done and the status at the last `update`. */
  private done: number;
  private info = '';

  /** What the lines start with: a model or folder name may hold control characters, shown escaped. */
  private readonly label: string;

  /** `resumedAt`: units an earlier, stopped run already did; shown as such, and left out of the speed. */
  constructor(
    label: string,
    private readonly total: number,
    private readonly quiet = false,
    private readonly resumedAt = 0,
  ) {
    this.label = label = escapeControls(label);
    this.lastLine = this.done = resumedAt;
    if (quiet) return;
    const resumed = resumedAt > 0 ? `resumed at ${resumedAt}/${total}` : '';
    if (!process.stderr.isTTY) {
      this.interval = logInterval();
      if (resumed) process.stderr.write(`${label} ${resumed}\n`);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        // not {eta}: cli-progress fills that with its own estimate (seconds), over any payload's.
        // Speed and eta before the status, and a short bar: an 80-column terminal cuts the line's end.
        format: `${label} [{bar}] {value}/{total} {speed} img/s eta {left} {info}`,
        barsize: 20,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, resumedAt, { info: resumed, speed: '–', left: '–' });
  }

  /** Whether anyone sees the progress (not quiet): `inner` costs nothing otherwise. */
  get shown(): boolean {
    return !this.quiet;
  }

  /** Images per second and the ETA at `done` units (a fraction counts a batch in progress). */
  private pace(done: number): { speed: string; left: string } {
    const seconds = (performance.now() - this.start) / 1000;
    // images per second of this run (not counting a resumed run's), so "–" until one is done
    const speed = seconds > 0 ? (done - this.resumedAt) / seconds : 0;
    const left = speed > 0 ? formatDuration((this.total - done) / speed) : '–';
    return { speed: formatRate(speed), left };
  }

  /** `done` units (images) finished, counting those before a resume; `info` is a short status such as "robust 12.5%". */
  update(done: number, info: string): void {
    if (this.quiet) return;
    this.done = done;
    this.info = info;
    const { speed, left } = this.pace(done);
    if (this.bar) return this.bar.update(done, { info, speed, left });
    if (done === this.total || done - this.lastLine >= Math.max(1, Math.round(this.total / 10))) {
      this.lastLine = done;
      this.lastLineAt = performance.now();
      process.stderr.write(
        `${this.label} ${done}/${this.total} ${info} ${speed} img/s eta ${left}\n`,
      );
    }
  }

  /**
   * Where the unit in progress stands: `done` units counting the finished share of the one in
   * progress (the speed and ETA count it), `where` says it for people ("batch 2/8: target 3/9 ·
   * step 45/100 · …"). On a terminal at once; in a log when the last line is `interval` seconds old.
   */
  inner(done: number, where: string): void {
    if (this.quiet) return;
    const info = this.info ? `${this.info} · ${where}` : where;
    if (this.bar) return this.bar.update({ info, ...this.pace(done) });
    const now = performance.now();
    if (now - this.lastLineAt < this.interval * 1000) return;
    this.lastLineAt = now;
    const { speed, left } = this.pace(done);
    process.stderr.write(
      `${this.label} ${this.done}/${this.total} ${info} · ${speed} img/s eta ${left}\n`,
    );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
