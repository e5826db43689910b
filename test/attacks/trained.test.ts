/** Attacks against a small model trained on the bundled Fashion-MNIST sample. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import { take, type ImageSet } from '../../data/dataset.js';
import { NO_AUGMENT, makeBatch } from '../../data/batches.js';
import { makeAttack, pgd } from '../../attacks/index.js';
import { runAttack } from '../../eval/attack-run.js';
import { Rng } from '../../util/rng.js';
import { smallFashionCnn } from './models.js';
import { SUITE_THREADS } from '../helpers.js';

let model: tf.LayersModel;
let test: ImageSet;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  const data = await loadData('fashion-mnist-sample');
  const all = Int32Array.from({ length: data.train.count }, (_, i) => i);
  const b = makeBatch(data.train, all, NO_AUGMENT, new Rng(0));
  model = smallFashionCnn();
  model.compile({
    optimizer: tf.train.adam(0.003),
    loss: (y: tf.Tensor, z: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, z),
  });
  const onehot = tf.oneHot(b.y, 10);
  await model.fit(b.x, onehot, { epochs: 6, batchSize: 64, shuffle: false, verbose: 0 });
  tf.dispose([b.x, b.y, onehot]);
  test = take(data.test, 200);
}, 120_000);

describe('a trained model', () => {
  it('is accurate; PGD takes much of its accuracy away at eps 8/255 and nearly all at 0.1 (the usual Fashion-MNIST budget)', async () => {
    const weak = await runAttack(model, pgd(model, { eps: 8 / 255, steps: 10 }), test, {
      quiet: true,
    });
    expect(weak.stats.clean_acc).toBeGreaterThan(0.7);
    expect(weak.stats.robust_acc).toBeLessThan(0.6 * weak.stats.clean_acc);
    const strong = await runAttack(model, pgd(model, { eps: 0.1, steps: 20 }), test, {
      quiet: true,
    });
    expect(strong.stats.robust_acc).toBeLessThan(0.1);
  });

  it('robust accuracy never rises with eps or with more steps (within one example)', async () => {
    const one = 1 / test.count;
    let last = 1;
    for (const eps of [0, 0.01, 0.02, 0.04, 0.08]) {
      const r = await runAttack(model, pgd(model, { eps, steps: 10 }), test, { quiet: true });
      if (eps === 0) expect(r.stats.robust_acc).toBe(r.stats.clean_acc);
      expect(r.stats.robust_acc).toBeLessThanOrEqual(last + one);
      last = r.stats.robust_acc;
    }
    last = 1;
    for (const steps of [1, 3, 10, 30]) {
      const r = await runAttack(model, pgd(model, { eps: 0.02, steps, alpha: 0.005 }), test, {
        quiet: true,
      });
      expect(r.stats.robust_acc).toBeLessThanOrEqual(last + one);
      last = r.stats.robust_acc;
    }
  });

  it('every attack beats FGSM-free clean accuracy; PGD is not weaker than FGSM; APGD is not weaker than PGD', async () => {
    const eps = 0.03;
    const acc: Record<string, number> = {};
    for (const name of ['fgsm', 'pgd', 'apgd-ce', 'apgd-dlr', 'mifgsm', 'bim']) {
      const r = await runAttack(
        model,
        makeAttack(name, model, { eps, steps: name.startsWith('apgd') ? 20 : 10 }),
        test,
        { quiet: true },
      );
      acc[name] = r.stats.robust_acc;
      expect(r.stats.robust_acc).toBeLessThan(r.stats.clean_acc);
    }
    expect(acc.pgd).toBeLessThanOrEqual(acc.fgsm + 1 / test.count);
    expect(acc['apgd-ce']).toBeLessThanOrEqual(acc.pgd + 2 / test.count);
  });

  it('targeted attacks reach their targets: random, least-likely and a fixed class', async () => {
    for (const targeted of ['random', 'least-likely', 3] as const) {
      const r = await runAttack(model, pgd(model, { eps: 0.3, steps: 30, targeted }), test, {
        quiet: true,
      });
      expect(r.stats.success_rate, `targeted ${targeted}`).toBeGreaterThan(0.9);
    }
  });

  it('restarts never weaken PGD', async () => {
    const one = await runAttack(
      model,
      pgd(model, { eps: 0.02, steps: 5, restarts: 1, seed: 4 }),
      test,
      { quiet: true },
    );
    const three = await runAttack(
      model,
      pgd(model, { eps: 0.02, steps: 5, restarts: 3, seed: 4 }),
      test,
      { quiet: true },
    );
    expect(three.stats.robust_acc).toBeLessThanOrEqual(one.stats.robust_acc);
  });
});
