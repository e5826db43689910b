/** Gradient clipping: each value into [−value, value], then the whole set scaled to global L2 norm ≤ norm. */
import tf from '#tfjs';

export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.tidy(
    () => tf.addN(Object.values(grads).map((g) => g.square().sum())).sqrt() as tf.Scalar,
  );
}

/** Returns new gradient tensors and disposes the given ones. */
export function clipGradients(
  grads: tf.NamedTensorMap,
  o: { norm?: number; value?: number },
): tf.NamedTensorMap {
  const out = tf.tidy(() => {
    let g: tf.NamedTensorMap = { ...grads };
    if (o.value !== undefined)
      g = Object.fromEntries(
        Object.entries(g).map(([k, t]) => [k, t.clipByValue(-o.value!, o.value!)]),
      );
    if (o.norm !== undefined) {
      const scale = tf.minimum(1, tf.div(o.norm, globalNorm(g).add(1e-12)));
      g = Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.mul(scale)]));
    }
    return g;
  });
  tf.dispose(Object.values(grads).filter((t) => !Object.values(out).includes(t)));
  return out;
}
