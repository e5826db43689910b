/** A full disk during training: one line naming the file, the previous complete checkpoint intact, and the run resumes. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { createModel } from '../../models/zoo.js';
import { loadModel } from '../../models/checkpoint.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

let data: DataSplit;
const config: TrainConfig = {
  model: 'resnet20',
  width: 4,
  data: 'fashion-mnist-sample',
  epochs: 2,
  batchSize: 32,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'cosine',
  augment: { cropPad: 0, flip: false },
  seed: 1,
  limit: 64,
  checkpointEvery: 1,
  backend: 'wasm',
};
const fresh = () =>
  createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width: 4,
    seed: 1,
  });

/** Makes the `n`-th write (by path or descriptor) from now on fail as on a full disk. */
function diskFullAt(n: number) {
  const real = fs.writeFileSync;
  let calls = 0;
  return vi
    .spyOn(fs, 'writeFileSync')
    .mockImplementation((...args: Parameters<typeof fs.writeFileSync>) => {
      if (++calls >= n)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
          errno: -28,
          syscall: 'write',
        });
      return real(...args);
    });
}

describe('disk full while training', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
    data = await loadData('fashion-mnist-sample', { limit: 64, testLimit: 32 });
  });
  afterEach(() => vi.restoreAllMocks());

  it('whichever checkpoint or log write fails: one RobustError naming it, the last complete checkpoint loads, and --resume finishes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(19, 20), fc.integer({ min: 1, max: 24 })),
        async (n) => {
          const out = tmpDir('enospc');
          const full = diskFullAt(n);
          const error = await trainModel(fresh, data, config, out, { quiet: true }).then(
            () => undefined,
            (e: unknown) => e,
          );
          full.mockRestore();
          if (error === undefined) return; // the run needed fewer writes
          expect(error, String(error)).toBeInstanceOf(RobustError);
          const message = (error as Error).message;
          expect(message).toMatch(
            new RegExp(`^${out}/(checkpoint|log\\.json|log\\.csv)\\S*: cannot write \\(ENOSPC`),
          );
          expect(message.split('\n')).toHaveLength(1);
          const ckpt = path.join(out, 'checkpoint');
          if (fs.existsSync(ckpt)) {
            expect(fs.readdirSync(ckpt).sort()).toEqual([
              'model.json',
              'optimizer.bin',
              'state.json',
              'weights.bin',
            ]);
            (await loadModel(ckpt)).dispose();
          }
          const resumed = await trainModel(fresh, data, config, out, { quiet: true, resume: true });
          expect(resumed.log).toHaveLength(2);
          expect(JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'))).toHaveLength(2);
          resumed.model.dispose();
        },
      ),
      { numRuns: 12 },
    );
  });
});
