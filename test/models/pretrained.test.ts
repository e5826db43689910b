/** The trained checkpoints shipped in zoo/: intact, loadable, as accurate and as robust as their record says. */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { loadData } from '../../data/index.js';
import { take, type ImageSet } from '../../data/dataset.js';
import { loadModel } from '../../models/checkpoint.js';
import {
  loadPretrained,
  pretrainedEntries,
  resolvePretrained,
  ZOO_PREFIX,
} from '../../models/pretrained.js';
import { foldedClassifier } from '../../models/fold.js';
import { accuracy } from '../../eval/accuracy.js';
import { runAttack } from '../../eval/attack-run.js';
import { pgd } from '../../attacks/index.js';
import { loadCifar10 } from '../../data/cifar10.js';
import path from 'node:path';
import { HAS_SHARED_CIFAR, missing, SHARED_DATA } from '../helpers.js';

const entries = pretrainedEntries();
// The bundled sample's 500 test images are the first 500 of the Fashion-MNIST test set.
const fashion = entries.filter((e) => e.data === 'fashion-mnist');
let sample: ImageSet;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  sample = (await loadData('fashion-mnist-sample')).test;
});

// The zoo is committed (zoo/index.json): on CI an empty index or a missing Fashion-MNIST pair fails rather than skips.
describe.skipIf(missing(entries.length > 0))('the shipped zoo', () => {
  it.each(entries.map((e) => [e.name, e] as const))(
    '%s: files match their SHA-256, the model loads and records what the index says',
    async (_name, e) => {
      const model = await loadPretrained(e.name);
      const meta = (
        model.getUserDefinedMetadata() as {
          robust: { model: string; data: string; defense?: string };
        }
      ).robust;
      expect(meta).toMatchObject({ model: e.architecture, data: e.data });
      expect(meta.defense ?? 'none').toBe(e.defense);
      model.dispose();
    },
  );

  it.each(fashion.map((e) => [e.name, e] as const))(
    '%s: clean accuracy on the bundled test images is within 4 points of the recorded full-test accuracy',
    async (_name, e) => {
      const model = await loadModel(resolvePretrained(ZOO_PREFIX + e.name));
      expect(Math.abs(accuracy(model, sample) - e.test_acc)).toBeLessThan(0.04);
      model.dispose();
    },
  );

  // CIFAR-10 entries against the real test set in ../shared (present on CI; skipped without it).
  const cifar = entries.filter((e) => e.data === 'cifar10');
  if (cifar.length > 0 && !HAS_SHARED_CIFAR)
    console.warn(
      `skipping the CIFAR-10 zoo accuracy check: ${SHARED_DATA} is absent (it exists on CI)`,
    );
  it.skipIf(cifar.length === 0 || missing(HAS_SHARED_CIFAR))(
    'CIFAR-10 entries: clean accuracy on the first 1000 test images is within 4 points of the recorded full-test accuracy',
    async () => {
      const test = take(
        (await loadCifar10(path.join(SHARED_DATA, 'cifar10', 'cifar-10-binary.tar.gz'))).test,
        1000,
      );
      for (const e of cifar) {
        const model = await loadModel(resolvePretrained(ZOO_PREFIX + e.name));
        expect(Math.abs(accuracy(model, test) - e.test_acc), e.name).toBeLessThan(0.04);
        model.dispose();
      }
    },
  );

  const hasPair =
    fashion.some((e) => e.defense === 'none') && fashion.some((e) => e.defense !== 'none');
  it.skipIf(missing(hasPair))(
    'the Fashion-MNIST pair: under PGD-10 at eps 0.1 the adversarially trained model keeps far more accuracy than the standard one',
    async () => {
      expect(
        hasPair,
        'zoo/index.json lists a standard and a defended Fashion-MNIST model (the README runs them)',
      ).toBe(true);
      const robustAcc = async (name: string) => {
        const model = await loadModel(resolvePretrained(ZOO_PREFIX + name));
        const classifier = foldedClassifier(model)!;
        const r = await runAttack(
          classifier,
          pgd(classifier, { eps: 0.1, steps: 10 }),
          take(sample, 200),
          { quiet: true },
        );
        classifier.dispose?.();
        model.dispose();
        return r.stats.robust_acc;
      };
      const standard = await robustAcc(fashion.find((e) => e.defense === 'none')!.name);
      const defended = await robustAcc(fashion.find((e) => e.defense !== 'none')!.name);
      expect(standard).toBeLessThan(0.1);
      expect(defended).toBeGreaterThan(standard + 0.4);
    },
  );
});
