/**
 * What attacks and evaluation see of a model: a differentiable map from [0,1] NHWC images to
 * logits, run in inference or training mode, possibly randomized (then attacks need EOT).
 */
import tf from '#tfjs';

export type ModelMode = 'inference' | 'train';

export interface Classifier {
  /** Logits for a batch of images in [0,1]; must be differentiable with respect to `x`. */
  logits(x: tf.Tensor4D, mode: ModelMode): tf.Tensor2D;
  readonly numClasses: number;
  /** True when two calls on the same input may differ (noise injection…): attacks should use EOT. */
  readonly randomized: boolean;
  /** State that training-mode forward passes change (BatchNorm running statistics). */
  readonly statefulWeights: tf.LayerVariable[];
  /** Frees what the classifier made for itself (e.g. a BN-folded copy), never the model it wraps. */
  dispose?(): void;
}

export function isClassifier(m: unknown): m is Classifier {
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof (m as Classifier).logits === 'function' &&
    'numClasses' in m
  );
}

/** A tf.layers model as a Classifier: `training: true` in train mode (batch statistics, dropout on). */
export function layersClassifier(model: tf.LayersModel): Classifier {
  const out = model.outputs[0].shape;
  return {
    numClasses: out[out.length - 1] as number,
    randomized: false,
    statefulWeights: model.nonTrainableWeights,
    logits: (x, mode) => model.apply(x, { training: mode === 'train' }) as tf.Tensor2D,
  };
}

export function asClassifier(m: tf.LayersModel | Classifier): Classifier {
  return isClassifier(m) ? m : layersClassifier(m);
}

/**
 * Runs `fn` with the classifier in `mode`; in train mode, the BatchNorm running statistics that
 * the forward passes update are restored afterwards, so an attack never changes the model.
 */
export async function inMode<T>(c: Classifier, mode: ModelMode, fn: () => Promise<T>): Promise<T> {
  if (mode === 'inference' || c.statefulWeights.length === 0) return fn();
  const saved = c.statefulWeights.map((w) => tf.clone(w.read()));
  try {
    return await fn();
  } finally {
    c.statefulWeights.forEach((w, i) => w.write(saved[i]));
    tf.dispose(saved);
  }
}
