/** Small models for attack tests. */
import tf from '#tfjs';

/** conv(3×3, 4) → BN → ReLU → flatten → dense: tiny, random, with BatchNorm state. */
export function tinyConvNet(
  seed: number,
  shape: [number, number, number] = [8, 8, 3],
  classes = 5,
): tf.LayersModel {
  const init = (s: number) => tf.initializers.glorotNormal({ seed: seed * 7 + s + 1 });
  const input = tf.input({ shape });
  let h = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(1) })
    .apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.activation({ activation: 'relu' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ units: classes, kernelInitializer: init(2) })
    .apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** logits = flatten(x)·W + b with the given weights ([inputs, classes]). */
export function linearModel(
  shape: [number, number, number],
  w: number[][],
  b: number[],
): tf.LayersModel {
  const input = tf.input({ shape });
  const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: b.length });
  const out = dense.apply(flat) as tf.SymbolicTensor;
  dense.setWeights([tf.tensor2d(w), tf.tensor1d(b)]);
  return tf.model({ inputs: input, outputs: out });
}

/** Uniform random images in [0,1] and labels, seeded. */
export function randomBatch(
  n: number,
  shape: [number, number, number],
  classes: number,
  seed: number,
): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const x = tf.randomUniform([n, ...shape], 0, 1, 'float32', seed) as tf.Tensor4D;
  const y = tf.randomUniform([n], 0, classes, 'int32', seed + 1) as tf.Tensor1D;
  return { x, y };
}

/** A two-conv CNN for 28×28 grayscale images: trains in seconds on the bundled sample. */
export function smallFashionCnn(): tf.LayersModel {
  const init = (s: number) => tf.initializers.heNormal({ seed: s });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 8,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      tf.layers.conv2d({
        filters: 16,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: init(2),
      }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, kernelInitializer: init(3) }),
    ],
  });
}
