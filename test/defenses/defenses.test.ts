/** Each defense does what it says, on tiny models and a slice of the bundled sample. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { defenseConfig, parseDefenses } from '../../defenses/defense.js';
import { clipGradients, globalNorm } from '../../defenses/clip.js';
import { klDivergence, tradesAdversary, tradesLoss } from '../../defenses/trades.js';
import { DefendedStep } from '../../defenses/training-step.js';
import { layersClassifier } from '../../models/classifier.js';
import { createModel } from '../../models/zoo.js';
import { loadData } from '../../data/index.js';
import type { DataSplit } from '../../data/dataset.js';
import { trainModel, type TrainConfig } from '../../train/trainer.js';
import { runAttack } from '../../eval/attack-run.js';
import { pgd } from '../../attacks/index.js';
import { RobustError } from '../../util/errors.js';
import { randomBatch, smallFashionCnn, tinyConvNet } from '../attacks/models.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const SHAPE: [number, number, number] = [8, 8, 3];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

describe('--defense parsing', () => {
  it('accepts lists and the adv alias, rejects unknown names and two adversarial methods', () => {
    expect(parseDefenses('adv')).toEqual(['pgd']);
    expect(parseDefenses('pgd,clip')).toEqual(['pgd', 'clip']);
    expect(parseDefenses('none')).toEqual([]);
    expect(() => parseDefenses('pgd,trades')).toThrow(/choose one adversarial/);
    expect(() => parseDefenses('distillation')).toThrow(/unknown defense 'distillation'/);
    expect(() => parseDefenses('none,clip')).toThrow(RobustError);
    // the library names its options; the CLI says its flags (test/cli/cli.test.ts)
    expect(() => defenseConfig(['clip'])).toThrow(
      /^defense clip needs clipNorm and\/or clipValue$/,
    );
    expect(() => defenseConfig(['noise'])).toThrow(/^defense noise needs noiseStd > 0$/);
    expect(() => defenseConfig(['dropout'])).toThrow(
      /^defense dropout needs dropout > 0 and\/or blockDropout > 0$/,
    );
    expect(() => defenseConfig(['pgd'], { steps: 0 })).toThrow(/^steps /);
  });
});

describe('gradient clipping', () => {
  it('by global norm: the clipped norm is ≤ clip-norm and the direction is kept; small gradients pass unchanged', () => {
    const g = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) }; // global norm 13
    const c = clipGradients(g, { norm: 1 });
    expect(globalNorm(c).dataSync()[0]).toBeCloseTo(1, 5);
    expect(Array.from(c.a.dataSync()).map((v) => +v.toFixed(5))).toEqual([
      +(3 / 13).toFixed(5),
      +(4 / 13).toFixed(5),
    ]);
    const small = { a: tf.tensor1d([0.1, 0.2]) };
    expect(Array.from(clipGradients(small, { norm: 1 }).a.dataSync())).toEqual(
      Array.from(tf.tensor1d([0.1, 0.2]).dataSync()),
    );
  });

  it('by value: every entry in [−v, v]', () => {
    const c = clipGradients({ a: tf.tensor1d([-5, 0.5, 7]) }, { value: 1 });
    expect(Array.from(c.a.dataSync())).toEqual([-1, 0.5, 1]);
  });

  it('in a training step, the update the optimizer sees has norm ≤ clip-norm', () => {
    const model = tinyConvNet(1);
    const { x, y } = randomBatch(8, SHAPE, 5, 1);
    const step = new DefendedStep(model, 5, defenseConfig(['clip'], { clipNorm: 0.01 }));
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => step.loss({ inputs: x }, y).loss, vars);
    const raw = globalNorm(grads).dataSync()[0];
    const clipped = step.gradients(grads);
    expect(raw).toBeGreaterThan(0.01);
    expect(globalNorm(clipped).dataSync()[0]).toBeLessThanOrEqual(0.01 * (1 + 1e-5));
    tf.dispose([model, x, y, ...Object.values(clipped)]);
  });
});

describe('TRADES', () => {
  it('loss = CE + β·KL on a hand-checked case', () => {
    const zc = tf.tensor2d([[1, 0]]);
    const za = tf.tensor2d([[0, 1]]);
    const y = tf.tensor1d([0], 'int32');
    // CE = ln(1 + e^−1) = 0.313262; KL(p‖q) with p = σ(1,0), q = σ(0,1): (p0 − p1)·1 = 0.462117
    expect(klDivergence(zc, za).dataSync()[0]).toBeCloseTo(0.462117, 5);
    expect(tradesLoss(zc, za, y, 6).dataSync()[0]).toBeCloseTo(0.313262 + 6 * 0.462117, 4);
    expect(tradesLoss(zc, zc, y, 6).dataSync()[0]).toBeCloseTo(0.313262, 5);
  });

  it('its adversary stays in the eps-ball and raises the KL divergence from the clean prediction', async () => {
    const model = tinyConvNet(2);
    const { x, y } = randomBatch(8, SHAPE, 5, 2);
    const eps = 0.05;
    const adv = await tradesAdversary(layersClassifier(model), x, y, {
      eps,
      alpha: 0.01,
      steps: 10,
      seed: 1,
    });
    const [linf, klAdv] = tf.tidy(() => [
      adv.sub(x).abs().max().dataSync()[0],
      klDivergence(
        model.predict(x) as tf.Tensor2D,
        model.predict(adv) as tf.Tensor2D,
      ).dataSync()[0],
    ]);
    expect(linf).toBeLessThanOrEqual(eps + 1e-6);
    expect(klAdv).toBeGreaterThan(1e-3);
    tf.dispose([model, x, y, adv]);
  });
});

describe('batch transforms', () => {
  it('PGD-AT with adv-ratio ½: the first half is adversarial (within eps), the second half exactly clean', async () => {
    const model = tinyConvNet(3);
    const { x, y } = randomBatch(8, SHAPE, 5, 3);
    const step = new DefendedStep(
      model,
      5,
      defenseConfig(['pgd'], { eps: 0.03, advRatio: 0.5, steps: 3 }),
    );
    const p = await step.prepare(x, y, 7);
    const d = tf.tidy(() => p.inputs.sub(x).abs().max([1, 2, 3])).dataSync();
    for (let i = 0; i < 4; i++) {
      expect(d[i]).toBeGreaterThan(0);
      expect(d[i]).toBeLessThanOrEqual(0.03 + 1e-6);
    }
    for (let i = 4; i < 8; i++) expect(d[i]).toBe(0);
    // reproducible per batch seed (so resumed runs replay it)
    const again = await step.prepare(x, y, 7);
    expect(Array.from(again.inputs.dataSync())).toEqual(Array.from(p.inputs.dataSync()));
    tf.dispose([model, x, y, p.inputs, again.inputs]);
  });

  it('noise injection adds Gaussian noise of the given std to the training inputs', async () => {
    const model = tinyConvNet(4);
    const x = tf.fill([16, ...SHAPE], 0.5) as tf.Tensor4D;
    const y = tf.zeros([16], 'int32') as tf.Tensor1D;
    const step = new DefendedStep(model, 5, defenseConfig(['noise'], { noiseStd: 0.1 }));
    const p = await step.prepare(x, y, 1);
    const [mean, std] = tf.tidy(() => {
      const { mean, variance } = tf.moments(p.inputs.sub(x));
      return [mean.dataSync()[0], variance.sqrt().dataSync()[0]];
    });
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(std).toBeGreaterThan(0.09);
    expect(std).toBeLessThan(0.11);
    tf.dispose([model, x, y, p.inputs]);
  });

  it('dropout (classifier and blocks) is random in training and off at inference', () => {
    const model = createModel('resnet20', {
      inputShape: [8, 8, 3],
      numClasses: 5,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      width: 4,
      dropout: 0.5,
      blockDropout: 0.3,
    });
    expect(model.layers.filter((l) => l.getClassName() === 'Dropout')).toHaveLength(10); // 9 blocks + classifier
    const { x } = randomBatch(4, SHAPE, 5, 5);
    const run = (training: boolean) =>
      tf.tidy(() => Array.from((model.apply(x, { training }) as tf.Tensor).dataSync()));
    expect(run(true)).not.toEqual(run(true));
    expect(run(false)).toEqual(run(false));
    tf.dispose([model, x]);
  });
});

describe('adversarial training works', () => {
  let data: DataSplit;
  beforeAll(async () => {
    data = await loadData('fashion-mnist-sample', { limit: 768, testLimit: 150 });
  });
  const config = (over: Partial<TrainConfig>): TrainConfig => ({
    model: 'tiny',
    data: data.name,
    epochs: 4,
    batchSize: 32,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'onecycle',
    augment: { cropPad: 0, flip: false },
    seed: 1,
    checkpointEvery: 0,
    backend: 'wasm',
    ...over,
  });
  const fresh = smallFashionCnn;

  it('FGSM-RS, PGD-AT and TRADES models are far more robust to PGD than a standard one; the log records robust accuracy', async () => {
    const eps = 0.1;
    const robustEval = { limit: 150, eps, steps: 10 };
    const robustAcc = async (defense?: TrainConfig['defense']) => {
      const out = tmpDir('defense');
      const { model, log } = await trainModel(fresh, data, config({ defense, robustEval }), out, {
        quiet: true,
      });
      expect(log.every((e) => typeof e.robust_acc === 'number')).toBe(true);
      expect(fs.existsSync(path.join(out, 'best', 'model.json'))).toBe(true);
      const r = await runAttack(model, pgd(model, { eps, steps: 20 }), data.test, { quiet: true });
      model.dispose();
      return r.stats;
    };
    const standard = await robustAcc(undefined);
    const fast = await robustAcc(defenseConfig(['fgsm-rs'], { eps }));
    const madry = await robustAcc(defenseConfig(['pgd'], { eps, steps: 3, alpha: 0.04 }));
    const trades = await robustAcc(
      defenseConfig(['trades'], { eps, steps: 3, alpha: 0.04, beta: 6 }),
    );
    expect(standard.clean_acc).toBeGreaterThan(0.6);
    expect(fast.robust_acc).toBeGreaterThan(standard.robust_acc + 0.2);
    expect(madry.robust_acc).toBeGreaterThan(standard.robust_acc + 0.2);
    expect(trades.robust_acc).toBeGreaterThan(standard.robust_acc + 0.2);
    console.log(
      `robust accuracy at eps ${eps}: standard ${standard.robust_acc}, fgsm-rs ${fast.robust_acc}, pgd ${madry.robust_acc}, trades ${trades.robust_acc}`,
    );
  }, 300_000);
});

describe('training attacks on a zoo ResNet', () => {
  it('run on the BN-folded copy of the current weights: the same PGD examples as on the model itself', async () => {
    const model = createModel('resnet20', {
      inputShape: [8, 8, 3],
      numClasses: 4,
      mean: [0.5, 0.5, 0.5],
      std: [0.3, 0.3, 0.3],
      width: 4,
      seed: 3,
    });
    model.setUserDefinedMetadata({ robust: { model: 'resnet20', width: 4 } });
    const x = tf.randomUniform([16, 8, 8, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const y = tf.randomUniform([16], 0, 4, 'int32', 6) as tf.Tensor1D;
    const step = new DefendedStep(model, 4, defenseConfig(['pgd'], { eps: 0.1, steps: 5 }));
    const compare = async (seed: number) => {
      const ours = (await step.prepare(x, y, seed)).inputs;
      const plain = await pgd(layersClassifier(model), {
        eps: 0.1,
        alpha: 2 / 255,
        steps: 5,
        randomStart: true,
        select: 'last',
        seed,
      }).images(x, y);
      // Sign steps: a gradient component within float noise of 0 may flip; nearly all pixels agree exactly.
      const differing = tf.tidy(() => ours.sub(plain).abs().greater(1e-5).mean().dataSync()[0]);
      tf.dispose([ours, plain]);
      return differing;
    };
    expect(await compare(1)).toBeLessThan(0.01);
    // Change weights and BN statistics as training does: the folded copy must follow.
    for (let i = 0; i < 3; i++) tf.tidy(() => void model.apply(x.mul(2), { training: true }));
    model.getLayer('stem_conv').setWeights(
      model
        .getLayer('stem_conv')
        .getWeights()
        .map((w) => w.mul(1.5)),
    );
    expect(await compare(2)).toBeLessThan(0.01);
    step.dispose();
    tf.dispose([x, y]);
    model.dispose();
  });
});
