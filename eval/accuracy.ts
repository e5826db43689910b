/** Clean accuracy of a model on an image set, in inference mode. */
import * as tf from '@tensorflow/tfjs';
import type { ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, epochBatches, makeBatch } from '../data/batches.js';
import { Rng } from '../util/rng.js';
import { isClassifier, type Classifier } from '../models/classifier.js';

/** Clean accuracy; a Classifier is measured as attacks see it (a randomized one with its noise). */
export function accuracy(model: tf.LayersModel | Classifier, set: ImageSet, batchSize = 500): number {
  let correct = 0;
  const rng = new Rng(0);
  for (const idx of epochBatches(set.count, batchSize)) {
    const b = makeBatch(set, idx, NO_AUGMENT, rng);
    const hits = tf.tidy(() => {
      // predict would otherwise split the batch into 32s, which our conv kernels run slower.
      const logits = isClassifier(model) ? model.logits(b.x, 'inference') : (model.predict(b.x, { batchSize }) as tf.Tensor2D);
      return logits.argMax(1).equal(b.y).sum();
    });
    correct += hits.dataSync()[0];
    tf.dispose([hits, b.x, b.y]);
  }
  return correct / set.count;
}
