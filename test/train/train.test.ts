import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { createModel } from '../../models/zoo.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { Sgd } from '../../train/sgd.js';
import { learningRate } from '../../train/schedule.js';
import { tmpDir } from '../helpers.js';

let data: DataSplit;
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  model: 'resnet20',
  width: 8,
  data: 'fashion-mnist-sample',
  epochs: 3,
  batchSize: 32,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'cosine',
  augment: { cropPad: 2, flip: false },
  seed: 1,
  checkpointEvery: 0,
  backend: 'wasm',
  ...over,
});
const fresh = (dropout = 0) =>
  createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width: 8,
    seed: 1,
    dropout,
    blockDropout: dropout,
  });

describe('training', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 }); // one thread: bit-for-bit reproducible
    data = await loadData('fashion-mnist-sample', { limit: 640, testLimit: 300 });
  });

  it('SGD follows PyTorch: v ← μv + g + wd·w, w ← w − lr·v (decay on kernels only, or on all weights)', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({
          units: 1,
          inputShape: [2],
          kernelInitializer: 'ones',
          biasInitializer: 'ones',
        }),
      ],
    });
    const sgd = new Sgd(model.trainableWeights, { momentum: 0.5, weightDecay: 0.1 });
    const [k, b] = model.trainableWeights.map((v) => (v.read() as tf.Variable).name);
    for (let i = 0; i < 2; i++)
      sgd.step({ [k]: tf.tensor2d([[1], [2]]), [b]: tf.tensor1d([1]) }, 0.1);
    // kernel[0]: v1 = 1 + 0.1·1 = 1.1, w1 = 0.89; v2 = 0.55 + 1 + 0.089 = 1.639, w2 = 0.89 − 0.1639
    expect(model.getWeights()[0].dataSync()[0]).toBeCloseTo(0.89 - 0.1639, 5);
    // bias (no decay): v1 = 1, w1 = 0.9; v2 = 1.5, w2 = 0.75
    expect(model.getWeights()[1].dataSync()[0]).toBeCloseTo(0.75, 5);
    sgd.dispose();
    // decay 'all': the bias decays as the kernel does (v1 = 1.1, w1 = 0.89; v2 = 1.639)
    model.setWeights([tf.ones([2, 1]), tf.ones([1])]);
    const all = new Sgd(model.trainableWeights, { momentum: 0.5, weightDecay: 0.1, decay: 'all' });
    for (let i = 0; i < 2; i++)
      all.step({ [k]: tf.tensor2d([[1], [2]]), [b]: tf.tensor1d([1]) }, 0.1);
    expect(model.getWeights()[0].dataSync()[0]).toBeCloseTo(0.89 - 0.1639, 5);
    expect(model.getWeights()[1].dataSync()[0]).toBeCloseTo(0.89 - 0.1639, 5);
    all.dispose();
  });

  it('the optimizer holds exactly one buffer per variable and frees them all', () => {
    const model = fresh();
    const before = tf.memory().numTensors;
    const sgd = new Sgd(model.trainableWeights, { momentum: 0.9, weightDecay: 5e-4 });
    expect(tf.memory().numTensors - before).toBe(model.trainableWeights.length);
    sgd.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('schedules: step drops ×10 at 50% and 75%, cosine and one-cycle end at 0', () => {
    expect(learningRate('step', 0.1, 0.49)).toBeCloseTo(0.1);
    expect(learningRate('step', 0.1, 0.6)).toBeCloseTo(0.01);
    expect(learningRate('step', 0.1, 0.8)).toBeCloseTo(0.001);
    expect(learningRate('cosine', 0.1, 1)).toBeCloseTo(0);
    expect(learningRate('onecycle', 0.1, 0.4)).toBeCloseTo(0.1);
    expect(learningRate('onecycle', 0.1, 1)).toBeCloseTo(0);
  });

  it("cyclic is PyTorch's CyclicLR(base_lr=0, max_lr, step_size_up = step_size_down = steps/2) at every step", () => {
    // CyclicLR's triangle at step k: cycle = ⌊1 + k/2S⌋, x = |k/S − 2·cycle + 1|, lr = max·max(0, 1 − x)
    const steps = 15 * 391;
    const half = steps / 2;
    for (const k of [0, 1, 390, 2932, 2933, 2934, 4000, steps - 1]) {
      const cycle = Math.floor(1 + k / (2 * half));
      const x = Math.abs(k / half - 2 * cycle + 1);
      expect(learningRate('cyclic', 0.2, k / steps)).toBeCloseTo(0.2 * Math.max(0, 1 - x), 12);
    }
    expect(learningRate('cyclic', 0.2, 0)).toBe(0);
    expect(learningRate('cyclic', 0.2, 0.5)).toBeCloseTo(0.2, 12);
  });

  it('on real Fashion-MNIST images the loss falls and test accuracy rises; live tensors stay flat', async () => {
    const out = tmpDir('train');
    const counts: number[] = [];
    const { model, log } = await trainModel(() => fresh(), data, config(), out, {
      quiet: true,
      onEpoch: () => counts.push(tf.memory().numTensors),
    });
    expect(log).toHaveLength(3);
    expect(log[2].train_loss).toBeLessThan(log[0].train_loss * 0.8);
    expect(log[2].test_acc).toBeGreaterThan(0.5);
    expect(log[2].test_acc).toBeGreaterThan(log[0].test_acc - 0.02);
    expect(counts[2]).toBe(counts[1]);
    const csv = fs.readFileSync(path.join(out, 'log.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('epoch,lr,train_loss,train_acc,test_acc,seconds,img_per_s');
    expect(csv).toHaveLength(4);
    model.dispose();
  });

  // with dropout too: its masks come from the batch's seed (models/seeded-dropout.ts), not Math.random
  it.each([0, 0.2])(
    'a run stopped mid-way and resumed ends with the same weights as an uninterrupted run (dropout %s)',
    async (dropout) => {
      const straight = await trainModel(
        () => fresh(dropout),
        data,
        config({ epochs: 2, checkpointEvery: 3 }),
        tmpDir('straight'),
        { quiet: true },
      );
      const out = tmpDir('resumed');
      // Die right after the 5th checkpoint (mid-way through epoch 2), as a kill would, then resume.
      let saved = 0;
      const die = () => {
        if (++saved === 5) throw new Error('killed');
      };
      await expect(
        trainModel(() => fresh(dropout), data, config({ epochs: 2, checkpointEvery: 3 }), out, {
          quiet: true,
          onCheckpoint: die,
        }),
      ).rejects.toThrow('killed');
      const resumed = await trainModel(
        () => fresh(dropout),
        data,
        config({ epochs: 2, checkpointEvery: 3 }),
        out,
        {
          quiet: true,
          resume: true,
        },
      );
      expect(resumed.log).toHaveLength(2);
      expect(resumed.log[1].test_acc).toBe(straight.log[1].test_acc);
      const a = straight.model.getWeights().map((w) => Array.from(w.dataSync()));
      const b = resumed.model.getWeights().map((w) => Array.from(w.dataSync()));
      expect(b).toEqual(a);
    },
  );
});
