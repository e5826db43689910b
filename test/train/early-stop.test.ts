/**
 * Wong et al.'s FGSM-RS recipe as their code runs it: the training attack in train mode (batch
 * statistics), the cyclic learning rate, and their early stop, which watches PGD-5 on a training
 * batch — never a test image — and keeps the epoch before a collapse.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { makeBatch, NO_AUGMENT } from '../../data/batches.js';
import { fgsm } from '../../attacks/fgsm.js';
import { createModel } from '../../models/zoo.js';
import { layersClassifier } from '../../models/classifier.js';
import { defenseConfig } from '../../defenses/defense.js';
import { DefendedStep } from '../../defenses/training-step.js';
import { train } from '../../train/run.js';
import { freshModel, trainConfig, type TrainOptions } from '../../train/options.js';
import { trainModel } from '../../train/trainer.js';
import { Rng } from '../../util/rng.js';
import { loadModel } from '../../models/checkpoint.js';
import { seedDropout } from '../../models/seeded-dropout.js';
import { batchRobustness } from '../../train/early-stop.js';
import { robust } from '../cli/fixtures.js';
import { ROOT, tmpDir } from '../helpers.js';

let data: DataSplit;
beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: 1 }); // as the CLI below: bit for bit
  data = await loadData('fashion-mnist-sample', { limit: 64, testLimit: 8 });
});

/** A width-4 ResNet-20 on the bundled Fashion-MNIST sample: every run here. */
const TINY = { model: 'resnet20', width: 4, data: 'fashion-mnist-sample' } as const;

/** A ResNet-20 for 28×28 images at `width` (dropout options as createModel's). */
const fmnistModel = (
  width: number,
  o: { seed?: number; dropout?: number; blockDropout?: number },
) =>
  createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width,
    ...o,
  });

/** What a call that should be refused said ('accepted' if it was not). */
const messageOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: Error) => e.message,
  );

const read = (dir: string, file: string) => fs.readFileSync(path.join(dir, file));
const json = (dir: string, file: string) => JSON.parse(read(dir, file).toString('utf8'));

describe("Wong et al.'s FGSM-RS: train-mode attack, cyclic lr, decay on all weights, early stop on a training batch", () => {
  it('the training attack in train mode is FGSM on batch statistics, and leaves the running statistics alone', async () => {
    const model = fmnistModel(4, { seed: 2 });
    const batch = makeBatch(
      data.train,
      Array.from({ length: 16 }, (_, i) => i),
      NO_AUGMENT,
      new Rng(0),
    );
    const stats = () => model.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
    const before = stats();
    const live = tf.memory().numTensors;
    const prepared = async (advMode?: 'train') => {
      const step = new DefendedStep(model, 10, defenseConfig(['fgsm-rs'], { eps: 0.1, advMode }));
      const { inputs } = await step.prepare(batch.x, batch.y, 77);
      step.dispose();
      const out = Array.from(inputs.dataSync());
      inputs.dispose();
      return out;
    };
    const trainMode = await prepared('train');
    const inference = await prepared();
    expect(tf.memory().numTensors).toBe(live);
    const reference = async (mode: 'train' | 'inference') => {
      const attack = fgsm(layersClassifier(model), { eps: 0.1, randomStart: true, seed: 77, mode });
      const adv = await attack.images(batch.x, batch.y);
      const out = Array.from(adv.dataSync());
      adv.dispose();
      return out;
    };
    expect(trainMode).toEqual(await reference('train'));
    // an untrained model's running statistics are far from a batch's: the two modes' steps differ
    const differing = trainMode.filter((v, i) => v !== inference[i]).length;
    expect(differing).toBeGreaterThan(trainMode.length / 10);
    expect(trainMode.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(stats()).toEqual(before);
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });

  it('robust train takes the recipe as flags: the same config and weights as train() from code, a check per epoch, best/ at the last epoch', async () => {
    const root = tmpDir('wong');
    const options: TrainOptions = {
      ...TINY,
      limit: 64,
      evalLimit: 8,
      batchSize: 16,
      epochs: 2,
      lr: 0.2,
      decay: 'all',
      schedule: 'cyclic',
      defense: 'fgsm-rs',
      eps: 0.1,
      alpha: 0.125,
      advMode: 'train',
      earlyStop: 'train-batch',
      robustEval: 8,
    };
    const cli = path.join(root, 'cli');
    const r = robust([
      'train',
      ...['--model', 'resnet20', '--width', '4', '--data', 'fashion-mnist-sample'],
      ...['--limit', '64', '--eval-limit', '8', '--batch-size', '16', '--epochs', '2'],
      ...[
        '--lr',
        '0.2',
        '--decay',
        'all',
        '--schedule',
        'cyclic',
        '--defense',
        'fgsm-rs',
        '--eps',
        '0.1',
      ],
      ...['--alpha', '0.125', '--adv-mode', 'train', '--early-stop', 'train-batch'],
      ...['--robust-eval', '8', '--backend', 'wasm', '--threads', '1', '--quiet', '--out', cli],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lib = path.join(root, 'lib');
    const run = await train({ ...options, out: lib, backend: 'wasm', threads: 1, quiet: true });
    run.model.dispose();
    const config = json(lib, 'checkpoint/state.json').config;
    expect(json(cli, 'checkpoint/state.json').config).toEqual(config);
    expect(config).toMatchObject({
      schedule: 'cyclic',
      decay: 'all',
      earlyStop: 'train-batch',
      defense: { names: ['fgsm-rs'], advMode: 'train', alpha: 0.125 },
    });
    expect(read(cli, 'checkpoint/weights.bin').equals(read(lib, 'checkpoint/weights.bin'))).toBe(
      true,
    );
    const log = json(lib, 'log.json') as { lr: number; batch_robust_acc?: number; flag?: string }[];
    expect(log).toHaveLength(2);
    for (const e of log) expect(e.batch_robust_acc).toBeGreaterThanOrEqual(0);
    // 8 steps: the triangle peaks at step 4, the last step's lr is 0.2·(1 − |2·7/8 − 1|)
    expect(log[1].lr).toBeCloseTo(0.05, 12);
    // no collapse: best/ is the last epoch, the checkpoint's weights
    expect(json(lib, 'best/state.json')).toMatchObject({ epoch: 2 });
    expect(read(lib, 'best/weights.bin').equals(read(lib, 'checkpoint/weights.bin'))).toBe(true);
    // another defense leaves the run's fgsm-rs-only settings behind: the refusal names the change
    const other = await messageOf(
      train({
        out: lib,
        backend: 'wasm',
        resume: true,
        defense: 'pgd',
        quiet: true,
      }),
    );
    expect(other).toMatch(/other settings: .*defense fgsm-rs → pgd, .*earlyStop train-batch → off/);
    // another rule on override watches anew: the next epoch is best/ by the robust evaluation
    const switched = await train({
      out: lib,
      backend: 'wasm',
      threads: 1,
      quiet: true,
      resume: true,
      override: true,
      epochs: 3,
      earlyStop: 'robust-eval',
    });
    switched.model.dispose();
    expect(json(lib, 'best/state.json')).toMatchObject({ epoch: 3 });
    // the old rule's watch is gone: no last check to compare with, the best robust accuracy is epoch 3's
    const after = json(lib, 'checkpoint/state.json');
    expect(after).not.toHaveProperty('batchRobust');
    expect(after.bestRobust).toBe(after.log[2].robust_acc);
  });

  it('a collapse of the check (a drop of over 20 points) stops the run, and best/ keeps the epoch before', async () => {
    // from zoo:fmnist-resnet20w8-fgsm-rs's weights, so that the check has robustness to lose
    const trained = await loadModel(path.join(ROOT, 'zoo', 'fmnist-resnet20w8-fgsm-rs'));
    const weights = trained.getWeights();
    const set = await loadData('fashion-mnist-sample', { limit: 256, testLimit: 16 });
    const options: TrainOptions = {
      ...TINY,
      width: 8,
      epochs: 1,
      batchSize: 64,
      lr: 0.01,
      defense: 'fgsm-rs',
      eps: 0.05,
      earlyStop: 'train-batch',
      robustEval: 16,
    };
    const run = async (o: TrainOptions, flags: { resume?: boolean; override?: boolean }) => {
      const config = trainConfig(o, set, 'wasm');
      const fresh = () => {
        const m = freshModel(config, set);
        m.setWeights(weights);
        return m;
      };
      const r = await trainModel(fresh, set, config, out, { quiet: true, ...flags });
      r.model.dispose();
    };
    const out = tmpDir('wong-collapse');
    await run(options, {});
    const epoch1 = read(out, 'checkpoint/weights.bin');
    const before = json(out, 'log.json') as { batch_robust_acc: number }[];
    expect(before[0].batch_robust_acc).toBeGreaterThan(0.5);
    // a learning rate of 3 wrecks the model in one epoch: the check falls by far more than 20 points
    const wreck = { ...options, epochs: 3, lr: 3 };
    await run(wreck, { resume: true, override: true });
    const log = json(out, 'log.json') as {
      epoch: number;
      batch_robust_acc: number;
      flag?: string;
    }[];
    expect(log.map((e) => e.epoch)).toEqual([1, 2]); // stopped after epoch 2 of 3
    expect(log[1].flag).toBe('catastrophic overfitting');
    expect(log[1].batch_robust_acc).toBeLessThan(before[0].batch_robust_acc - 0.2);
    expect(json(out, 'best/state.json')).toMatchObject({ epoch: 1 });
    expect(read(out, 'best/weights.bin').equals(epoch1)).toBe(true);

    // the stopped run has nothing to resume: refused in one line, nothing touched
    const stopped = read(out, 'checkpoint/weights.bin');
    const refusal = await messageOf(run(wreck, { resume: true }));
    expect(refusal).toMatch(
      /the run stopped itself after epoch 2 \(catastrophic overfitting: the check on a training batch fell by over 20 points\).*nothing to resume \(override trains the stopped model on; force starts over\)$/,
    );
    expect(refusal.split('\n')).toHaveLength(1);
    expect(read(out, 'checkpoint/weights.bin').equals(stopped)).toBe(true);
    // with override it goes on, and its state records that it did
    await run(wreck, { resume: true, override: true });
    const state = json(out, 'checkpoint/state.json');
    expect(state.changes.at(-1).changes).toEqual([
      'continued after its stop at epoch 2 (catastrophic overfitting: the check on a training batch fell by over 20 points)',
    ]);
    expect(state.epoch).toBe(3);
    trained.dispose();
  });

  it("with dropout, the train-mode check draws its masks from the seed it is given (the trainer gives the epoch's); --early-stop and --no-early-stop together are refused", async () => {
    // zoo:fmnist-resnet20w8-fgsm-rs's weights in the same network with dropout layers (they hold no weights)
    const trained = await loadModel(path.join(ROOT, 'zoo', 'fmnist-resnet20w8-fgsm-rs'));
    const model = fmnistModel(8, { dropout: 0.1, blockDropout: 0.1 });
    model.setWeights(trained.getWeights());
    trained.dispose();
    const batch = makeBatch(
      data.train,
      Array.from({ length: 64 }, (_, i) => i),
      NO_AUGMENT,
      new Rng(0),
    );
    const defense = defenseConfig(['fgsm-rs'], { eps: 0.02, advMode: 'train' });
    const check = async (seed: number | null) => {
      seedDropout(seed);
      const acc = await batchRobustness(model, batch, defense, { seed: 9 });
      seedDropout(null);
      return acc;
    };
    const seeded = [await check(123), await check(123), await check(123)];
    expect(new Set(seeded).size).toBe(1);
    expect(seeded[0]).toBeGreaterThan(0.2); // a trained model: a count dropout masks can move
    // unseeded, the masks (and with them the count) change from call to call
    const stock = [await check(null), await check(null), await check(null), await check(null)];
    expect(new Set([...stock, seeded[0]]).size).toBeGreaterThan(1);
    tf.dispose([batch.x, batch.y]);
    model.dispose();

    for (const order of [
      ['--no-early-stop', '--early-stop', 'train-batch'],
      ['--early-stop=train-batch', '--no-early-stop'],
    ]) {
      const out = path.join(tmpDir('wong-flags'), 'run');
      const r = robust(['train', '--defense', 'fgsm-rs', ...order, '--out', out]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        'robust: --early-stop and --no-early-stop contradict each other: give one',
      );
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});
