/** Progress of a counted task (attack or evaluation batches): a bar on a terminal, a line every ~10% otherwise. */
import cliProgress from 'cli-progress';
import { formatDuration, formatRate } from './format.js';

export class TaskProgress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine: number;
  private readonly start = performance.now();

  /** `resumedAt`: units an earlier, stopped run already did; shown as such, and left out of the speed. */
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly quiet = false,
    private readonly resumedAt = 0,
  ) {
    this.lastLine = resumedAt;
    if (quiet) return;
    const resumed = resumedAt > 0 ? `resumed at ${resumedAt}/${total}` : '';
    if (!process.stderr.isTTY) {
      if (resumed) process.stderr.write(`${label} ${resumed}\n`);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {info} {speed} img/s eta {eta}`,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, resumedAt, { info: resumed, speed: '–', eta: '–' });
  }

  /** `done` units (images) finished, counting those before a resume; `info` is a short status such as "robust 12.5%". */
  update(done: number, info: string): void {
    if (this.quiet) return;
    const seconds = (performance.now() - this.start) / 1000;
    // images per second of this run (not counting a resumed run's), so "–" until one is done
    const speed = seconds > 0 ? (done - this.resumedAt) / seconds : 0;
    const eta = speed > 0 ? formatDuration((this.total - done) / speed) : '–';
    if (this.bar) return this.bar.update(done, { info, speed: formatRate(speed), eta });
    if (done === this.total || done - this.lastLine >= Math.max(1, Math.round(this.total / 10))) {
      this.lastLine = done;
      process.stderr.write(
        `${this.label} ${done}/${this.total} ${info} ${formatRate(speed)} img/s eta ${eta}\n`,
      );
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
