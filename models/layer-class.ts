/** Our tf.layers classes that keep a stock class's name, registered in its place (loaded models get them). */
import tf from '#tfjs';

const done = new WeakSet<object>();

/** Registers `cls` under its `className`, replacing the stock class of that name (idempotent). */
export function registerLayerClass(cls: object): void {
  if (done.has(cls)) return;
  tf.serialization.registerClass(
    cls as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
  done.add(cls);
}
