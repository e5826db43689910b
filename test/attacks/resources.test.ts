/** Memory discipline, model mode, and EOT on a randomized model. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { apgd, makeAttack, pgd } from '../../attacks/index.js';
import { evaluate } from '../../attacks/gradient.js';
import { objective } from '../../attacks/losses.js';
import { noisyClassifier } from '../../defenses/noise-injection.js';
import { randomBatch, tinyConvNet } from './models.js';
import { createModel } from '../../models/zoo.js';
import { foldedClassifier } from '../../models/fold.js';
import { SUITE_THREADS } from '../helpers.js';

const SHAPE: [number, number, number] = [8, 8, 3];

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

describe('memory', () => {
  it('the number of live tensors is the same before and after 1000 PGD steps (2 restarts × 500) and 100 steps of APGD, targeted MI-FGSM, EOT', async () => {
    const model = tinyConvNet(2);
    const { x, y } = randomBatch(16, SHAPE, 5, 3);
    const attacks = [
      pgd(model, { steps: 500, restarts: 2, eps: 0.01 }),
      apgd(model, { steps: 100, loss: 'dlr', eps: 0.01 }),
      makeAttack('mifgsm', model, { steps: 100, targeted: 'random' }),
      makeAttack('eot-pgd', model, { steps: 20, eotSamples: 3, norm: 'l2' }),
      pgd(model, { steps: 20, mode: 'train' }),
    ];
    for (const attack of attacks) {
      const before = tf.memory().numTensors;
      const adv = await attack.images(x, y);
      adv.dispose();
      expect(tf.memory().numTensors, attack.info.name).toBe(before);
    }
    tf.dispose([model, x, y]);
  });
});

describe('memory on a zoo ResNet (our wasm kernels, fused BatchNorm)', () => {
  it('100 PGD steps on the folded model and 50 in train mode leave the live tensor count unchanged', async () => {
    const model = createModel('resnet20', {
      inputShape: SHAPE,
      numClasses: 5,
      mean: [0.5, 0.5, 0.5],
      std: [0.3, 0.3, 0.3],
      width: 2,
      seed: 1,
    });
    model.setUserDefinedMetadata({ robust: { model: 'resnet20', width: 2 } });
    const folded = foldedClassifier(model)!;
    const { x, y } = randomBatch(4, SHAPE, 5, 9);
    for (const [attack, label] of [
      [pgd(folded, { steps: 100, eps: 0.01 }), 'folded, inference'],
      [pgd(model, { steps: 50, eps: 0.01, mode: 'train' }), 'train mode'],
    ] as const) {
      const before = tf.memory().numTensors;
      (await attack.images(x, y)).dispose();
      expect(tf.memory().numTensors, label).toBe(before);
    }
    folded.dispose?.();
    tf.dispose([model, x, y]);
  });
});

describe('model mode', () => {
  it('train mode uses batch statistics and leaves the BatchNorm running statistics as they were', async () => {
    const model = tinyConvNet(4);
    const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
    // running statistics far from the batch's, so the two modes see different networks
    bn.setWeights(
      bn
        .getWeights()
        .map((w, i) => (i === 2 ? tf.fill(w.shape, 5) : i === 3 ? tf.fill(w.shape, 9) : w)),
    );
    const before = bn.getWeights().map((w) => Array.from(w.dataSync()));
    const { x, y } = randomBatch(8, SHAPE, 5, 8);
    const inference = await pgd(model, { steps: 5, randomStart: false }).images(x, y);
    const train = await pgd(model, { steps: 5, randomStart: false, mode: 'train' }).images(x, y);
    expect(bn.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    expect(tf.tidy(() => inference.sub(train).abs().max()).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([model, x, y, inference, train]);
  });
});

describe('randomized models and EOT', () => {
  it('a noise-injection model is random unless seeded, and says it is randomized', () => {
    const model = tinyConvNet(5);
    const { x } = randomBatch(4, SHAPE, 5, 1);
    const a = noisyClassifier(model, { std: 0.1 });
    expect(a.randomized).toBe(true);
    const z1 = tf.tidy(() => a.logits(x, 'inference').dataSync());
    const z2 = tf.tidy(() => a.logits(x, 'inference').dataSync());
    expect(Array.from(z1)).not.toEqual(Array.from(z2));
    const s1 = tf.tidy(() =>
      noisyClassifier(model, { std: 0.1, seed: 3 }).logits(x, 'inference').dataSync(),
    );
    const s2 = tf.tidy(() =>
      noisyClassifier(model, { std: 0.1, seed: 3 }).logits(x, 'inference').dataSync(),
    );
    expect(Array.from(s1)).toEqual(Array.from(s2));
    tf.dispose([model, x]);
  });

  it('EOT averages gradients: 32 samples estimate the expected gradient far better than one', () => {
    const model = tinyConvNet(6);
    const noisy = noisyClassifier(model, { std: 0.3, seed: 1 });
    const { x, y } = randomBatch(4, SHAPE, 5, 2);
    const grad = (k: number) => {
      const e = evaluate(
        { classifier: noisy, objective: objective('ce'), mode: 'inference', eotSamples: k },
        x,
        y,
      );
      tf.dispose([e.value, e.logits]);
      return e.grad;
    };
    const reference = grad(1024);
    const error = (k: number) => {
      const g = grad(k);
      const err = tf.tidy(() => g.sub(reference).norm().div(reference.norm())).dataSync()[0];
      g.dispose();
      return err;
    };
    const one = error(1);
    const many = error(32);
    expect(many).toBeLessThan(one / 3); // Monte-Carlo error shrinks like 1/√k: √32 ≈ 5.7
    reference.dispose();
    tf.dispose([model, x, y]);
  });
});
