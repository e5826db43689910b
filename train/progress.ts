/** Training progress: a live bar on a terminal, a plain line every ~10% otherwise (logs, CI). */
import cliProgress from 'cli-progress';
import type { EpochLog } from './epoch-log.js';
import { formatDuration as formatSeconds, formatRate } from '../util/format.js';

interface BatchStats {
  loss: number;
  acc: number;
  imgPerS: number;
  lr: number;
}

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private epoch = 0;
  private epochs = 0;
  private batches = 0;
  private batchSize = 0;
  private lastLine = 0;
  private epochStarted = 0;
  private doneAtStart = 0;
  private readonly tty = !!process.stderr.isTTY;

  constructor(private readonly quiet: boolean) {}

  startEpoch(
    epoch: number,
    epochs: number,
    batches: number,
    done: number,
    batchSize: number,
  ): void {
    if (this.quiet) return;
    Object.assign(this, {
      epoch,
      epochs,
      batches,
      batchSize,
      lastLine: done,
      epochStarted: performance.now(),
      doneAtStart: done,
    });
    if (this.tty) {
      this.bar = new cliProgress.SingleBar(
        {
          // the eta early and a short bar: an 80-column terminal cuts the line's end
          format: `epoch ${epoch}/${epochs} [{bar}] {value}/{total} eta {eta_formatted} loss {loss} acc {acc} {speed} img/s lr {lr}`,
          barsize: 20,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(batches, done, { loss: '-', acc: '-', speed: '-', lr: '-' });
    }
  }

  batch(done: number, s: BatchStats): void {
    if (this.quiet) return;
    const fields = {
      loss: s.loss.toFixed(3),
      acc: (100 * s.acc).toFixed(1) + '%',
      speed: formatRate(s.imgPerS),
      lr: s.lr.toFixed(4),
    };
    if (this.bar) this.bar.update(done, fields);
    else if (
      done === this.batches ||
      done - this.lastLine >= Math.max(1, Math.round(this.batches / 10))
    ) {
      this.lastLine = done;
      const eta = s.imgPerS > 0 ? ((this.batches - done) * this.batchSize) / s.imgPerS : NaN;
      process.stderr.write(
        `epoch ${this.epoch}/${this.epochs} batch ${done}/${this.batches} loss ${fields.loss} acc ${fields.acc} ${fields.speed} img/s lr ${fields.lr} eta ${formatSeconds(eta)}\n`,
      );
    }
  }

  endEpoch(e: EpochLog): void {
    if (this.quiet) return;
    this.bar?.stop();
    this.bar = null;
    // The run's ETA at this epoch's wall-clock pace, evaluation included (scaled up when the epoch resumed midway).
    const left = this.epochs - e.epoch;
    const trained = (this.batches - this.doneAtStart) / Math.max(1, this.batches);
    const epochWall =
      trained > 0 ? (performance.now() - this.epochStarted) / 1000 / trained : e.seconds;
    process.stderr.write(
      `epoch ${e.epoch}/${this.epochs}: train loss ${e.train_loss.toFixed(4)} acc ${(100 * e.train_acc).toFixed(2)}% | test acc ${(100 * e.test_acc).toFixed(2)}%${e.robust_acc !== undefined ? ` robust ${(100 * e.robust_acc).toFixed(2)}%` : ''}${e.batch_robust_acc !== undefined ? ` check ${(100 * e.batch_robust_acc).toFixed(1)}%` : ''}${e.flag ? ` [${e.flag}]` : ''} | ${formatRate(e.img_per_s)} img/s, ${e.seconds.toFixed(0)} s${left > 0 ? `, run eta ${formatSeconds(left * epochWall)}` : ''}\n`,
    );
  }
}
