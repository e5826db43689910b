/** The small grid every eval test runs on: 24 synthetic 8×8 RGB images and a tiny random CNN. */
import tf from '#tfjs';
import type { EvalModel } from '../../eval/grid.js';
import type { ImageSet } from '../../data/dataset.js';
import { layersClassifier } from '../../models/classifier.js';
import { tinyConvNet } from '../attacks/models.js';

/** `n` deterministic 8×8×3 images (labels to be set by `gridModel`). */
export function syntheticSet(n = 24): ImageSet {
  const images = new Uint8Array(n * 8 * 8 * 3);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
  return { images, labels: new Uint8Array(n), count: n, height: 8, width: 8, channels: 3 };
}

/**
 * A tiny CNN (seed 2) as a grid model over `set`, whose labels become the model's predictions
 * (every image clean-correct) except at `misclassified`, which get the next class.
 */
export function gridModel(set: ImageSet, misclassified: number[] = []): EvalModel {
  const m = tinyConvNet(2);
  set.labels.set(
    tf.tidy(() =>
      (
        m.predict(
          tf.tensor4d(
            Float32Array.from(set.images, (v) => v / 255),
            [set.count, 8, 8, 3],
          ),
        ) as tf.Tensor
      )
        .argMax(1)
        .dataSync(),
    ) as Int32Array,
  );
  for (const i of misclassified) set.labels[i] = (set.labels[i] + 1) % 5;
  return {
    path: 'm',
    name: 'm',
    model: m,
    classifier: layersClassifier(m),
    defense: 'none',
    test: set,
    fingerprint: 'f',
  };
}
