/** Properties every attack must have, on random tiny models and random inputs (fast-check). */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { ATTACK_NAMES, crossEntropy, makeAttack, type AttackOptions } from '../../attacks/index.js';
import { RobustError } from '../../util/errors.js';
import { randomBatch, tinyConvNet } from './models.js';
import { SUITE_THREADS } from '../helpers.js';

const SHAPE: [number, number, number] = [8, 8, 3];
const steps = (name: string) => (name.startsWith('apgd') ? 8 : 4);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

describe('every attack, every norm', () => {
  for (const name of ATTACK_NAMES) {
    for (const norm of ['linf', 'l2', 'l1'] as const) {
      it(`${name} ${norm}: stays in the eps-ball and in [0,1]`, async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: 10_000 }),
            fc.double({ min: 0.001, max: { linf: 0.3, l2: 3, l1: 30 }[norm], noNaN: true }),
            async (seed, eps) => {
              const model = tinyConvNet(seed % 50);
              const { x, y } = randomBatch(6, SHAPE, 5, seed);
              const opts: AttackOptions = {
                eps,
                norm,
                steps: steps(name),
                seed,
                eotSamples: name === 'eot-pgd' ? 2 : undefined,
              };
              const adv = await makeAttack(name, model, opts).images(x, y);
              const [lo, hi, linf, l2, l1] = tf
                .tidy(() => {
                  const d = adv.sub(x);
                  return tf.stack([
                    adv.min(),
                    adv.max(),
                    d.abs().max(),
                    d.square().sum([1, 2, 3]).sqrt().max(),
                    d.abs().sum([1, 2, 3]).max(),
                  ]);
                })
                .dataSync();
              tf.dispose([model, x, y, adv]);
              expect(lo).toBeGreaterThanOrEqual(0);
              expect(hi).toBeLessThanOrEqual(1);
              if (norm === 'linf') expect(linf).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-7);
              else if (norm === 'l2') expect(l2).toBeLessThanOrEqual(eps * (1 + 1e-4) + 1e-6);
              else expect(l1).toBeLessThanOrEqual(eps * (1 + 1e-4) + 1e-5);
            },
          ),
          { numRuns: 4 },
        );
      });
    }

    it(`${name}: eps = 0 returns the input unchanged (every norm)`, async () => {
      const model = tinyConvNet(3);
      const { x, y } = randomBatch(5, SHAPE, 5, 11);
      for (const norm of ['linf', 'l2', 'l1'] as const) {
        const adv = await makeAttack(name, model, {
          eps: 0,
          norm,
          steps: steps(name),
          eotSamples: name === 'eot-pgd' ? 2 : undefined,
        }).images(x, y);
        expect(Array.from(adv.dataSync()), norm).toEqual(Array.from(x.dataSync()));
        adv.dispose();
      }
      tf.dispose([model, x, y]);
    });
  }
});

describe('extreme budgets', () => {
  // eps past the box's diameter (√(HWC) for L2, HWC for L1) allows exactly the same images: with the
  // same step size the attack must act as at the diameter (Linf refuses eps > 1 instead) — float32 overflow once zeroed the L2
  // projection — and any step size, however large, must move the images and keep them finite.
  for (const name of ATTACK_NAMES) {
    for (const norm of ['linf', 'l2', 'l1'] as const) {
      it(`${name} ${norm}: eps beyond the diameter acts as the diameter (Linf: refused); huge steps stay finite`, async () => {
        const d = SHAPE[0] * SHAPE[1] * SHAPE[2];
        const diameter = { linf: 1, l2: Math.sqrt(d), l1: d }[norm];
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 0, max: 10_000 }),
            fc.double({ min: 0, max: 300, noNaN: true }),
            async (seed, exponent) => {
              const eps = diameter * 10 ** exponent;
              const model = tinyConvNet(seed % 50);
              const { x } = randomBatch(4, SHAPE, 5, seed);
              const y = predicted(model, x);
              const opts = (e: number, alpha: number): AttackOptions => ({
                eps: e,
                alpha,
                norm,
                steps: steps(name),
                seed,
                eotSamples: name === 'eot-pgd' ? 2 : undefined,
              });
              // Linf refuses eps > 1 in one line (pixels are in [0,1]: --eps 8 meant 8/255)
              if (norm === 'linf' && eps > 1)
                await expect(
                  (async () => makeAttack(name, model, opts(eps, 0.25)).images(x, y))(),
                ).rejects.toThrow(/^eps must be in \[0,1\] for the Linf norm .*got /);
              const bounded = norm === 'linf' ? diameter : eps;
              const huge = await makeAttack(name, model, opts(bounded, diameter / 4)).images(x, y);
              const atDiameter = await makeAttack(name, model, opts(diameter, diameter / 4)).images(
                x,
                y,
              );
              const hugeStep = await makeAttack(name, model, opts(bounded, eps)).images(x, y);
              const [moved, movedHugeStep, finite] = tf.tidy(() =>
                [
                  huge.sub(x).abs().max(),
                  hugeStep.sub(x).abs().max(),
                  hugeStep.isFinite().all().cast('float32'),
                ].map((t) => t.dataSync()[0]),
              );
              const same = Array.from(huge.dataSync()).every(
                (v, i) => v === atDiameter.dataSync()[i],
              );
              tf.dispose([model, x, y, huge, atDiameter, hugeStep]);
              expect(moved > 0, `eps ${eps}: no perturbation`).toBe(true);
              expect(same, `eps ${eps}: differs from eps = diameter`).toBe(true);
              expect(
                finite === 1 && movedHugeStep > 0,
                `eps = alpha = ${eps}: perturbation ${movedHugeStep}`,
              ).toBe(true);
            },
          ),
          { numRuns: 3, seed: 5 },
        );
      });
    }
  }
});

/** Labels the model currently predicts, so every example starts out correctly classified. */
function predicted(model: tf.LayersModel, x: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => (model.predict(x) as tf.Tensor2D).argMax(1).cast('int32') as tf.Tensor1D);
}

describe('loss (on correctly classified examples)', () => {
  it('PGD never lowers the loss of an example below its clean loss (best iterate; no random start)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 10_000 }), async (seed) => {
        const model = tinyConvNet(seed % 50);
        const { x, y: random } = randomBatch(8, SHAPE, 5, seed);
        const y = predicted(model, x);
        random.dispose();
        const adv = await makeAttack('pgd', model, {
          eps: 0.05,
          steps: 5,
          randomStart: false,
        }).images(x, y);
        const [clean, attacked] = tf.tidy(() => [
          crossEntropy(model.predict(x) as tf.Tensor2D, y).dataSync(),
          crossEntropy(model.predict(adv) as tf.Tensor2D, y).dataSync(),
        ]);
        tf.dispose([model, x, y, adv]);
        for (let i = 0; i < clean.length; i++)
          expect(attacked[i]).toBeGreaterThanOrEqual(clean[i] - 1e-5);
        // and it really climbs: most examples gain loss
        expect(
          Array.from(attacked).filter((v, i) => v > clean[i] + 1e-4).length,
        ).toBeGreaterThanOrEqual(6);
      }),
      { numRuns: 5 },
    );
  });

  it('PGD with a random start raises the loss of nearly every example', async () => {
    const model = tinyConvNet(9);
    const { x, y: random } = randomBatch(32, SHAPE, 5, 99);
    const y = predicted(model, x);
    random.dispose();
    const adv = await makeAttack('pgd', model, { eps: 8 / 255, steps: 10 }).images(x, y);
    const [clean, attacked] = tf.tidy(() => [
      crossEntropy(model.predict(x) as tf.Tensor2D, y).dataSync(),
      crossEntropy(model.predict(adv) as tf.Tensor2D, y).dataSync(),
    ]);
    expect(Array.from(attacked).filter((v, i) => v > clean[i]).length).toBeGreaterThanOrEqual(31);
    tf.dispose([model, x, y, adv]);
  });
});

describe('bad input', () => {
  it('rejects pixels outside [0,1], NaN, and wrong labels with the toolkit error', async () => {
    const model = tinyConvNet(1);
    const attack = makeAttack('fgsm', model, {});
    const y = tf.tensor1d([0, 1], 'int32');
    const big = tf.fill([2, ...SHAPE], 2) as tf.Tensor4D;
    const nan = tf.fill([2, ...SHAPE], NaN) as tf.Tensor4D;
    await expect(attack(big, y)).rejects.toThrow(/\[0,1\]/);
    await expect(attack(nan, y)).rejects.toThrow(/NaN/);
    await expect(attack(tf.zeros([3, ...SHAPE]) as tf.Tensor4D, y)).rejects.toThrow(RobustError);
    tf.dispose([model, y, big, nan]);
  });

  it('rejects bad settings when the attack is made', () => {
    const model = tinyConvNet(1);
    expect(() => makeAttack('pgd', model, { eps: -1 })).toThrow(RobustError);
    expect(() => makeAttack('pgd', model, { steps: 0 })).toThrow(RobustError);
    expect(() => makeAttack('pgd', model, { eps: NaN })).toThrow(RobustError);
    expect(() => makeAttack('apgd-ce', model, { restarts: 1.5 })).toThrow(RobustError);
    expect(() => makeAttack('cw', model, {})).toThrow(/unknown attack/);
    model.dispose();
  });
});
