/**
 * Attacks return their verdict on each adversarial (success, predicted class) from the forward
 * passes they ran; `runAttack` uses it instead of a forward pass of its own when those passes are
 * the model's plain inference. On a deterministic model the verdict must be exactly what the model
 * says about the returned image: a mismatch here is a bug in an attack's bookkeeping.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { ATTACK_NAMES, makeAttack, pgd, type AttackOptions } from '../../attacks/index.js';
import type { AttackResult } from '../../attacks/attack.js';
import { layersClassifier, type Classifier } from '../../models/classifier.js';
import { sameUnderTape } from '../../models/tape-exact.js';
import { loadAnyModel } from '../../models/any-model.js';
import { noisyClassifier } from '../../defenses/noise-injection.js';
import { runAttack } from '../../eval/attack-run.js';
import type { ImageSet } from '../../data/dataset.js';
import { mobilenetV2Graph } from '../fixtures/graph-models.js';
import { tinyConvNet } from './models.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const SHAPE: [number, number, number] = [8, 8, 3];
const EPS = { linf: 0.1, l2: 1, l1: 8 } as const;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

const plainClass = (c: Classifier, x: tf.Tensor4D) =>
  tf.tidy(() => c.logits(x, 'inference').argMax(1).cast('int32').dataSync() as Int32Array);

/** Images the model classifies as labelled (labels = its predictions), as runAttack attacks them. */
function correctBatch(c: Classifier, n: number, seed: number) {
  const x = tf.randomUniform([n, ...SHAPE], 0, 1, 'float32', seed) as tf.Tensor4D;
  const y = tf.tensor1d(plainClass(c, x), 'int32');
  return { x, y };
}

/** The verdict as host arrays; disposes the result's verdict tensors (not adv). */
function verdictOf(r: AttackResult) {
  const out = {
    success: Array.from(r.success.dataSync(), Number),
    predicted: Array.from(r.predicted.dataSync()),
  };
  expect(r.success.dtype).toBe('bool');
  expect(r.predicted.dtype).toBe('int32');
  tf.dispose([r.success, r.predicted]);
  return out;
}

describe("an attack's verdict is the model's on a deterministic model", () => {
  let c: Classifier;
  beforeAll(() => {
    c = layersClassifier(tinyConvNet(3));
  });

  it('the tiny net computes the same logits under a tape (so runAttack takes the verdicts)', () => {
    const { x, y } = correctBatch(c, 4, 1);
    expect(sameUnderTape(c, x)).toBe(true);
    tf.dispose([x, y]);
  });

  // EOT's verdict is a mean over draws, which runAttack never takes; variants that only change
  // the descent core's settings run in Linf only.
  const linfOnly = new Set(['fgsm-rs', 'bim', 'mifgsm', 'apgd-dlr', 'fab-t']);
  for (const name of ATTACK_NAMES.filter((n) => n !== 'eot-pgd')) {
    for (const norm of linfOnly.has(name) ? (['linf'] as const) : (['linf', 'l2', 'l1'] as const)) {
      it(`${name} ${norm}`, async () => {
        const before = tf.memory().numTensors;
        const { x, y } = correctBatch(c, 8, 11);
        const opts: AttackOptions = {
          eps: EPS[norm],
          norm,
          steps: name === 'square' ? 12 : 4,
          restarts: name === 'random-noise' ? 3 : 2,
          seed: 4,
          ...(name === 'fab-t' || name === 'apgd-t' ? { targetClasses: 3 } : {}),
        };
        if (name.startsWith('fgsm') || name === 'mifgsm') delete opts.restarts;
        const r = await makeAttack(name, c, opts)(x, y);
        const { success, predicted } = verdictOf(r);
        const truth = Array.from(plainClass(c, r.adv));
        const labels = Array.from(y.dataSync());
        expect(predicted).toEqual(truth);
        if (name === 'fab' || name === 'fab-t') {
          // FAB counts only adversarials within eps and returns the other images unchanged
          const same = tf.tidy(() => r.adv.equal(x).all([1, 2, 3]).dataSync());
          for (let i = 0; i < labels.length; i++) {
            if (success[i]) expect(truth[i]).not.toBe(labels[i]);
            else expect(same[i]).toBe(1);
          }
        } else expect(success).toEqual(truth.map((p, i) => Number(p !== labels[i])));
        if (norm === 'linf') {
          // the images alone are the same images
          const images = await makeAttack(name, c, opts).images(x, y);
          expect(Array.from(images.dataSync())).toEqual(Array.from(r.adv.dataSync()));
          images.dispose();
        }
        tf.dispose([r.adv, x, y]);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  }

  it('targeted: success is reaching the target', async () => {
    const { x, y } = correctBatch(c, 8, 12);
    const targets = tf.tensor1d(
      Array.from(y.dataSync(), (v) => (v + 2) % 5),
      'int32',
    );
    let reached = 0;
    for (const name of ['fgsm', 'pgd', 'apgd-ce']) {
      const r = await makeAttack(name, c, { eps: 0.3, steps: 10, restarts: 2 })(x, y, { targets });
      const { success, predicted } = verdictOf(r);
      const truth = Array.from(plainClass(c, r.adv));
      expect(predicted).toEqual(truth);
      const t = Array.from(targets.dataSync());
      expect(success).toEqual(truth.map((p, i) => Number(p === t[i])));
      reached += success.reduce((a, b) => a + b, 0);
      r.adv.dispose();
    }
    expect(reached).toBeGreaterThan(0); // the check above saw successes, not only failures
    tf.dispose([x, y, targets]);
  });
});

/** `n` 8×8×3 images labelled with the classifier's own predictions: all clean-correct. */
function predictedSet(c: Classifier, n: number): ImageSet {
  const images = new Uint8Array(n * 8 * 8 * 3);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
  const x = tf.tensor4d(
    Float32Array.from(images, (v) => v / 255),
    [n, 8, 8, 3],
  );
  const labels = Uint8Array.from(plainClass(c, x));
  x.dispose();
  return { images, labels, count: n, height: 8, width: 8, channels: 3 };
}

/** runAttack's robust mask against the plain inference prediction on the adversarials it kept. */
async function checkRun(c: Classifier, attack: ReturnType<typeof pgd>, set: ImageSet) {
  const run = await runAttack(c, attack, set, {
    quiet: true,
    keepAdversarials: true,
    batchSize: 8,
  });
  const adv = tf.tensor4d(run.adversarial!, [set.count, 8, 8, 3]);
  const truth = plainClass(c, adv);
  adv.dispose();
  const robust = Array.from(truth, (p, i) => Number(p === set.labels[i]));
  expect(Array.from(run.robust)).toEqual(robust);
  return robust.reduce((a, b) => a + b, 0);
}

describe('runAttack', () => {
  it("uses the attack's verdict where it is the model's, and its masks are the model's", async () => {
    const c = layersClassifier(tinyConvNet(5));
    const set = predictedSet(c, 24);
    const robust = await checkRun(c, pgd(c, { eps: 0.03, steps: 5, restarts: 2 }), set);
    expect(robust).toBeGreaterThan(0);
    expect(robust).toBeLessThan(24);
  });

  it('checks independently on a graph model, whose fused ops round differently under a tape', async () => {
    const f = mobilenetV2Graph(path.join(tmpDir('verdicts'), 'mobilenet'), { size: 8, classes: 5 });
    const m = await loadAnyModel(path.join(f.dir, 'model.json'), { note: () => {} });
    const set = predictedSet(m.classifier, 16);
    const x = tf.tensor4d(
      Float32Array.from(set.images, (v) => v / 255),
      [16, 8, 8, 3],
    );
    expect(sameUnderTape(m.classifier, x)).toBe(false);
    x.dispose();
    await checkRun(m.classifier, pgd(m.classifier, { eps: 0.05, steps: 3 }), set);
    m.dispose();
  });

  it('never takes a verdict from a randomized model: it is drawn again', () => {
    const c = noisyClassifier(tinyConvNet(6), { std: 0.1, seed: 1 });
    const x = tf.zeros([2, ...SHAPE]) as tf.Tensor4D;
    expect(sameUnderTape(c, x)).toBe(false);
    x.dispose();
  });
});
