/** A diverged run stops with one line and keeps its last good checkpoint: nothing non-finite is ever written. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { createModel } from '../../models/zoo.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

let data: DataSplit;
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  model: 'resnet20',
  width: 4,
  data: 'fashion-mnist-sample',
  epochs: 2,
  batchSize: 16,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'constant',
  augment: { cropPad: 0, flip: false },
  seed: 1,
  limit: 64,
  checkpointEvery: 1,
  backend: 'wasm',
  ...over,
});
const fresh = () =>
  createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width: 4,
    seed: 1,
  });

/** Every float in a checkpoint's weights and optimizer state is finite. */
function checkpointFinite(out: string): boolean {
  return ['weights.bin', 'optimizer.bin'].every((f) => {
    const b = fs.readFileSync(path.join(out, 'checkpoint', f));
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4).every(Number.isFinite);
  });
}

describe('diverged training', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
    data = await loadData('fashion-mnist-sample', { limit: 64, testLimit: 32 });
  });

  it('huge --lr / --weight-decay / momentum: a one-line RobustError, and every checkpoint written is finite', async () => {
    const settings = fc.record({
      lr: fc.constantFrom(0.05, 1e4, 1e12, 1e30),
      weightDecay: fc.constantFrom(5e-4, 1e6, 1e30),
      momentum: fc.constantFrom(0.9, 0.99),
      checkpointEvery: fc.constantFrom(0, 1, 3),
    });
    await fc.assert(
      fc.asyncProperty(settings, async (s) => {
        const out = tmpDir('diverge');
        let error: unknown;
        let checkpoints = 0;
        await trainModel(fresh, data, config(s), out, {
          quiet: true,
          onCheckpoint: () => void (checkpoints++, expect(checkpointFinite(out)).toBe(true)),
        }).then(
          (r) => r.model.dispose(),
          (e: unknown) => (error = e),
        );
        if (error !== undefined) {
          expect(error, String(error)).toBeInstanceOf(RobustError);
          expect((error as Error).message).toMatch(
            /^training diverged: .* at epoch \d, batch \d+ .*(the last good checkpoint is kept|no checkpoint was written)/,
          );
          expect((error as Error).message.split('\n')).toHaveLength(1);
        }
        if (fs.existsSync(path.join(out, 'checkpoint'))) expect(checkpointFinite(out)).toBe(true);
        // A run that finished with checkpoints switched on wrote at least one, each checked above.
        if (error === undefined && s.checkpointEvery > 0) expect(checkpoints).toBeGreaterThan(0);
        if (s.lr >= 1e12 || s.weightDecay >= 1e30) expect(error, JSON.stringify(s)).toBeDefined();
      }),
      { numRuns: 15 },
    );
  });

  it("a run that diverges after a good epoch keeps that epoch's checkpoint byte for byte", async () => {
    const out = tmpDir('diverge-keep');
    (await trainModel(fresh, data, config({ epochs: 1 }), out, { quiet: true })).model.dispose();
    const good = fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin'));
    // lr·wd·w overflows float32 in the first update: the checkpoint after it would be all ±Inf.
    const bad = config({ epochs: 2, lr: 1e10, weightDecay: 1e30, checkpointEvery: 1 });
    await expect(
      trainModel(fresh, data, bad, out, { quiet: true, resume: true, override: true }),
    ).rejects.toThrow(
      /^training diverged: .*kernel\S* became NaN or infinite at epoch 2, batch 1 .*the last good checkpoint is kept/,
    );
    expect(fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin')).equals(good)).toBe(true);
  });
});
