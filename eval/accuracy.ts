/** Clean accuracy of a model on an image set, in inference mode. */
import tf from '#tfjs';
import type { ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, epochBatches, makeBatch } from '../data/batches.js';
import { Rng } from '../util/rng.js';
import { checkOption } from '../util/errors.js';
import { isClassifier, type Classifier } from '../models/classifier.js';

/** Each image's top class in inference mode, batch by batch; a Classifier as attacks see it (a randomized one with its noise). */
function predictedClasses(
  model: tf.LayersModel | Classifier,
  set: ImageSet,
  batchSize: number,
): Int32Array {
  const out = new Int32Array(set.count);
  const rng = new Rng(0);
  let at = 0;
  for (const idx of epochBatches(set.count, batchSize)) {
    const b = makeBatch(set, idx, NO_AUGMENT, rng);
    const top = tf.tidy(() => {
      // predict would otherwise split the batch into 32s, which our conv kernels run slower.
      const logits = isClassifier(model)
        ? model.logits(b.x, 'inference')
        : (model.predict(b.x, { batchSize }) as tf.Tensor2D);
      return logits.argMax(1);
    });
    out.set(top.dataSync(), at);
    at += idx.length;
    tf.dispose([top, b.x, b.y]);
  }
  return out;
}

/**
 * The set relabelled with the model's own clean predictions (`--labels predicted`): for images
 * without labels, robust accuracy then measures how many of the model's decisions survive an attack.
 */
export function withPredictedLabels(model: Classifier, set: ImageSet, batchSize = 500): ImageSet {
  checkOption(
    model.numClasses <= 256,
    (n) =>
      `${n('labels')} predicted: the model has ${model.numClasses} classes, more than robust's labels hold (256)`,
  );
  return { ...set, labels: Uint8Array.from(predictedClasses(model, set, batchSize)) };
}

/** Clean accuracy; a Classifier is measured as attacks see it (a randomized one with its noise). */
export function accuracy(
  model: tf.LayersModel | Classifier,
  set: ImageSet,
  batchSize = 500,
): number {
  const top = predictedClasses(model, set, batchSize);
  let correct = 0;
  for (let i = 0; i < set.count; i++) if (top[i] === set.labels[i]) correct++;
  return correct / set.count;
}
