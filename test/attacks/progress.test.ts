/**
 * Progress inside an attack's call: the hook hears the rounds (targets, restarts) and steps in
 * order and ends at the whole call, the results are the same bit for bit with or without it, and
 * at eps 0 an attack on a deterministic model answers from one forward pass.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import {
  ATTACK_NAMES,
  apgd,
  apgdTargeted,
  fab,
  makeAttack,
  pgd,
  square,
  type Attack,
  type AttackProgress,
} from '../../attacks/index.js';
import { describeProgress } from '../../attacks/progress.js';
import { layersClassifier, type Classifier } from '../../models/classifier.js';
import { noisyClassifier } from '../../defenses/noise-injection.js';
import { tinyConvNet } from './models.js';
import { SUITE_THREADS } from '../helpers.js';

const SHAPE: [number, number, number] = [8, 8, 3];

let c: Classifier;
let x: tf.Tensor4D;
let y: tf.Tensor1D;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  c = layersClassifier(tinyConvNet(3, SHAPE, 5));
  // labelled as the model classifies them, as runAttack attacks only clean-correct images
  x = tf.randomUniform([12, ...SHAPE], 0, 1, 'float32', 5) as tf.Tensor4D;
  y = tf.tidy(() => c.logits(x, 'inference').argMax(1).cast('int32')) as tf.Tensor1D;
});

/** A typed array's bytes, for bit-for-bit comparisons (NaN-safe, -0 ≠ 0). */
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The attack's result as host arrays (and the tensors freed). */
async function run(attack: Attack, onProgress?: (p: AttackProgress) => void) {
  attack.randomState = 12345;
  const r = await attack(x, y, { onProgress });
  const out = {
    adv: r.adv.dataSync().slice(),
    success: Array.from(r.success.dataSync()),
    predicted: Array.from(r.predicted.dataSync()),
  };
  tf.dispose([r.adv, r.success, r.predicted]);
  return out;
}

/** Every event the hook heard, checked for order: rounds and steps never go back, done only grows. */
async function heard(attack: Attack) {
  const events: AttackProgress[] = [];
  const result = await run(attack, (p) => events.push({ ...p }));
  for (const [i, e] of events.entries()) {
    expect(e.attack).toBe(attack.info.name);
    expect(e.examples).toBe(12);
    expect(e.round).toBeGreaterThanOrEqual(1);
    expect(e.round).toBeLessThanOrEqual(e.rounds);
    expect(e.step).toBeGreaterThanOrEqual(0);
    expect(e.step).toBeLessThanOrEqual(e.steps);
    expect(e.robust).toBeGreaterThanOrEqual(0);
    expect(e.robust).toBeLessThanOrEqual(e.examples);
    if (i === 0) continue;
    const before = events[i - 1];
    expect(e.round).toBeGreaterThanOrEqual(before.round);
    if (e.round === before.round) expect(e.step).toBeGreaterThanOrEqual(before.step);
    expect(e.done).toBeGreaterThanOrEqual(before.done);
    expect(e.robust).toBeLessThanOrEqual(before.robust);
  }
  const last = events[events.length - 1];
  // the last report is the whole call, with the verdict's count of unbroken examples
  expect(last.round).toBe(last.rounds);
  expect(last.step).toBe(last.steps);
  expect(last.done).toBe(1);
  expect(last.robust).toBe(result.success.filter((s) => !s).length);
  return { events, result };
}

describe('the progress hook', () => {
  it('FAB-T: target by target, each of its steps in order, counting what it broke within eps at every step', async () => {
    const { events } = await heard(fab(c, { eps: 0.1, steps: 6, targetClasses: 3 }));
    const first = events[0];
    expect(first).toMatchObject({ rounds: 3, targets: 3, restarts: 1, steps: 6, unit: 'step' });
    // each target's round starts at step 0 and walks its 6 steps (a round is left out only when nothing is left to break)
    const started = events.filter((e) => e.step === 0).map((e) => e.target);
    expect(started[0]).toBe(1);
    for (const t of started.slice(1)) expect(t).toBeGreaterThan(1);
    const t1 = events.filter((e) => e.target === 1 && e.round === 1).map((e) => e.step);
    expect(t1).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // the robust count moves inside a round (FAB counts on the host): it broke some of the 12
    expect(events.some((e) => e.round === 1 && e.step > 0 && e.robust < 12)).toBe(true);
    expect(describeProgress(events[3])).toBe(
      `target 1/3 · step 3/6 · ${events[3].robust}/12 still robust`,
    );
  });

  it('FAB with restarts, APGD-T, APGD-CE with restarts, PGD, and L1-APGD over its 3·eps, 2·eps, eps schedule', async () => {
    const fabR = await heard(fab(c, { eps: 0.02, steps: 4, restarts: 3 }));
    expect(fabR.events[0]).toMatchObject({ rounds: 3, restarts: 3 });
    expect(fabR.events[0].targets).toBeUndefined();
    const apgdT = await heard(apgdTargeted(c, { eps: 0.01, steps: 5, targetClasses: 9 }));
    // 9 targets asked, the model has 4 wrong classes: 4 rounds
    expect(apgdT.events[0]).toMatchObject({ rounds: 4, targets: 4, steps: 5 });
    const ce = await heard(apgd(c, { eps: 0.005, steps: 5, restarts: 2 }));
    expect(ce.events.map((e) => `${e.restart}:${e.step}`).slice(0, 6)).toEqual([
      '1:0',
      '1:1',
      '1:2',
      '1:3',
      '1:4',
      '1:5',
    ]);
    await heard(pgd(c, { eps: 0.01, steps: 3 }));
    const l1 = await heard(apgd(c, { norm: 'l1', eps: 0.5, steps: 10 }));
    // the stages' steps (3, 3, 4) are counted as one run of 10
    expect(l1.events.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]);
  });

  it('Square counts queries and the examples its margins say are still robust', async () => {
    const { events } = await heard(square(c, { eps: 0.05, steps: 40 }));
    expect(events[0]).toMatchObject({ unit: 'query', steps: 40, rounds: 1 });
    expect(describeProgress(events[2])).toMatch(/^query 1\/40 · \d+\/12 still robust$/);
  });

  it('leaves no tensor behind and changes no bit: FAB-T, Square (Linf, L2), APGD-T, PGD with restarts', async () => {
    const attacks = [
      fab(c, { eps: 0.1, steps: 8, targetClasses: 3 }),
      square(c, { eps: 0.05, steps: 60 }),
      square(c, { eps: 0.5, steps: 60, norm: 'l2' }),
      apgdTargeted(c, { eps: 0.02, steps: 6, targetClasses: 3 }),
      pgd(c, { eps: 0.02, steps: 5, restarts: 2 }),
    ];
    for (const attack of attacks) {
      const before = tf.memory().numTensors;
      const plain = await run(attack);
      let calls = 0;
      const hooked = await run(attack, () => calls++);
      expect(tf.memory().numTensors, attack.info.name).toBe(before);
      expect(calls, attack.info.name).toBeGreaterThan(5);
      expect(hooked.success, attack.info.name).toEqual(plain.success);
      expect(hooked.predicted, attack.info.name).toEqual(plain.predicted);
      expect(bytes(hooked.adv).equals(bytes(plain.adv)), attack.info.name).toBe(true);
    }
  });
});

describe('eps 0', () => {
  /** `c` counting its forward passes and those under a gradient tape. */
  function counting(inner: Classifier) {
    const calls = { logits: 0 };
    const wrapped: Classifier = {
      ...inner,
      logits: (xs, mode) => {
        calls.logits++;
        return inner.logits(xs, mode);
      },
    };
    return { wrapped, calls };
  }

  it('every attack and norm returns x and the model verdict on it, from one forward pass (per EOT sample)', async () => {
    const expected = Array.from(y.dataSync());
    for (const norm of ['linf', 'l2', 'l1'] as const)
      for (const name of ATTACK_NAMES) {
        const { wrapped, calls } = counting(c);
        let attack: Attack;
        try {
          attack = makeAttack(name, wrapped, { eps: 0, norm });
        } catch {
          continue; // not defined for this norm
        }
        const events: AttackProgress[] = [];
        const r = await run(attack, (p) => events.push({ ...p }));
        const label = `${name} ${norm}`;
        expect(bytes(r.adv).equals(bytes(x.dataSync() as Float32Array)), label).toBe(true);
        expect(r.success, label).toEqual(new Array(12).fill(0));
        expect(r.predicted, label).toEqual(expected);
        // the verdict: one pass (EOT's mean over its samples: one per sample)
        expect(calls.logits, label).toBe(attack.info.eotSamples);
        expect(events, label).toHaveLength(1);
        expect(events[0], label).toMatchObject({ done: 1, robust: 12 });
      }
  });

  it('a misclassified image comes back as it is, counted fooled (x is in the eps-ball): FAB and FAB-T too, at any eps', async () => {
    const wrong = tf.tidy(() => y.add(1).mod(5).cast('int32')) as tf.Tensor1D;
    for (const attack of [
      fab(c, { eps: 0, targetClasses: 3 }),
      fab(c, { eps: 0 }),
      pgd(c, { eps: 0 }),
    ]) {
      const r = await attack(x, wrong);
      expect(Array.from(r.success.dataSync()), attack.info.name).toEqual(new Array(12).fill(1));
      tf.dispose([r.adv, r.success, r.predicted]);
    }
    // and at any eps: distance 0 is within every budget (FAB counted them robust above eps 0)
    for (const norm of ['linf', 'l2', 'l1'] as const)
      for (const attack of [
        fab(c, { eps: 1e-3, norm, steps: 2, targetClasses: 3 }),
        fab(c, { eps: 1e-3, norm, steps: 2 }),
      ]) {
        const r = await attack(x, wrong);
        const label = `${attack.info.name} ${norm}`;
        expect(Array.from(r.success.dataSync()), label).toEqual(new Array(12).fill(1));
        expect(Array.from(r.adv.dataSync()), label).toEqual(Array.from(x.dataSync()));
        expect(Array.from(r.predicted.dataSync()), label).toEqual(
          Array.from(tf.tidy(() => c.logits(x, 'eval').argMax(1).dataSync())),
        );
        tf.dispose([r.adv, r.success, r.predicted]);
      }
    wrong.dispose();
  });

  it('a randomized model is still attacked at eps 0: its verdicts are draws', async () => {
    const noisy = noisyClassifier(c, { std: 0.1, seed: 3 });
    const { wrapped, calls } = counting(noisy);
    const r = await pgd(wrapped, { eps: 0, steps: 3, eotSamples: 2 })(x, y);
    tf.dispose([r.adv, r.success, r.predicted]);
    expect(calls.logits).toBeGreaterThan(2);
  });
});
