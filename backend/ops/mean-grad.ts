/**
 * Mean's gradient without a tensor of ones made in JS.
 *
 * tfjs-core's is (dy reshaped) · ones(x.shape) / n, and `ones` fills a typed array of x's size in
 * JS and uploads it — 2 MB per global pool of a [32,16,16,64] activation, every attack step, and
 * the garbage collector's work after. Ours is fill(x.shape, 0) + dy/n, the same values (x + 0 = x)
 * from a Fill kernel and a broadcasting Add (one pass each on wasm: backend/wasm-broadcast.ts).
 * Registered for every backend.
 */
import tf from '#tfjs';

const meanGrad: tf.GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const axes = tf.util.parseAxisParam(
      (attrs as unknown as { axis: number | number[] }).axis,
      x.shape,
    );
    const n = tf.util.sizeFromShape(tf.backend_util.computeOutAndReduceShapes(x.shape, axes)[1]);
    return {
      x: () => {
        const expanded = x.shape.slice();
        for (const a of axes) expanded[a] = 1;
        return tf.add(
          tf.fill(x.shape, 0, 'float32'),
          tf.div(tf.reshape(dy as tf.Tensor, expanded), n),
        );
      },
    };
  },
};

export function registerMeanGradient(): void {
  tf.registerGradient(meanGrad);
}
