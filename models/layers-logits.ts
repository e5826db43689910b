/**
 * The logits of a LayersModel that robust did not build. Attacks need logits: losses on
 * probabilities saturate and make attacks look weaker than they are. A model that ends in softmax
 * (a Softmax layer, an Activation('softmax'), or a layer with activation 'softmax') is attacked on
 * the pre-activation of that last layer; a one-unit sigmoid head becomes two-class logits [0, z].
 */
import tf from '#tfjs';
import { optionError, RobustError } from '../util/errors.js';

/** How the attacked outputs relate to the model's own. */
export type LogitsSource = 'outputs' | 'softmax-input' | 'sigmoid-input' | 'log-softmax' | 'named';

interface LayersLogits {
  /** Logits for a batch of model inputs (already preprocessed). */
  apply(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  numClasses: number;
  source: LogitsSource;
  /** What was done, for stderr and the results ("logits: the input of softmax layer dense_2"). */
  note?: string;
  dispose(): void;
}

type Config = tf.serialization.ConfigDict & { activation?: string; name?: string };

const rank2 = (shape: (number | null)[], where: string): number => {
  if (shape.length !== 2 || !(Number(shape[1]) >= 1))
    throw new RobustError(
      `${where} has shape [${shape.map((d) => d ?? '?').join(', ')}], not [batch, classes]`,
    );
  return shape[1] as number;
};

/** A model from the model's input to `output`, sharing its layers (never disposed on its own: the layers belong to the model). */
const upTo = (model: tf.LayersModel, output: tf.SymbolicTensor) =>
  tf.model({ inputs: model.inputs, outputs: output });

/** The logits of `model`, or of layer `output` when named (`--output`). */
export function layersLogits(model: tf.LayersModel, file: string, output?: string): LayersLogits {
  if (model.inputs.length !== 1)
    throw new RobustError(
      `${file}: the model has ${model.inputs.length} inputs; robust attacks models with one image input`,
    );
  if (output !== undefined) {
    const layer = model.layers.find((l) => l.name === output);
    if (!layer)
      throw new RobustError(
        `${file}: no layer named '${output}' (last layers: ${model.layers
          .slice(-5)
          .map((l) => l.name)
          .join(', ')})`,
      );
    const sub = upTo(model, layer.output as tf.SymbolicTensor);
    const k = rank2(sub.outputs[0].shape, `layer ${output}`);
    return {
      apply: (x, training) => sub.apply(x, { training }) as tf.Tensor2D,
      numClasses: k,
      source: 'named',
      note: `logits: the output of layer ${output} (--output)`,
      dispose: () => {},
    };
  }
  if (model.outputs.length !== 1)
    throw optionError(
      (n) =>
        `${file}: the model has ${model.outputs.length} outputs: name the logits layer with ${n('output')} LAYER`,
    );
  const last = model.outputs[0].sourceLayer;
  const k = rank2(model.outputs[0].shape, `${file}: the model's output`);
  const cls = last.getClassName();
  const cfg = last.getConfig() as Config;
  const activation =
    cls === 'Softmax' ? 'softmax' : typeof cfg.activation === 'string' ? cfg.activation : 'linear';
  const plain: LayersLogits = {
    apply: (x, training) => model.apply(x, { training }) as tf.Tensor2D,
    numClasses: k,
    source: 'outputs',
    dispose: () => {},
  };
  if (activation === 'logSoftmax' || activation === 'log_softmax')
    return {
      ...plain,
      source: 'log-softmax',
      note: `logits: the log-softmax outputs of layer ${last.name} (logits up to a constant per image)`,
    };
  if (activation !== 'softmax' && activation !== 'sigmoid') return plain;
  if (activation === 'sigmoid' && k !== 1)
    throw optionError(
      (n) =>
        `${file}: the model ends in a ${k}-unit sigmoid (multi-label outputs): robust attacks classifiers; name logits with ${n('output')} LAYER`,
    );
  if (
    cls === 'Softmax' &&
    (cfg as { axis?: unknown }).axis !== undefined &&
    ![-1, 1].includes(Number([(cfg as { axis?: unknown }).axis].flat()[0]))
  ) {
    throw new RobustError(`${file}: the final softmax is not over the class axis`);
  }
  const input = last.input;
  if (Array.isArray(input))
    throw optionError(
      (n) =>
        `${file}: the final ${activation} layer ${last.name} takes several inputs: name the logits layer with ${n('output')} LAYER`,
    );
  // The same layer without its activation, on the same input, with the same weights.
  let pre: tf.LayersModel;
  let head: tf.layers.Layer | undefined;
  if (cls === 'Activation' || cls === 'Softmax') pre = upTo(model, input);
  else {
    const [ctor, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap[cls];
    head = fromConfig(ctor, {
      ...cfg,
      activation: 'linear',
      name: `${cfg.name}_logits`,
    }) as tf.layers.Layer;
    pre = upTo(model, head.apply(input) as tf.SymbolicTensor);
    head.setWeights(last.getWeights());
  }
  const where = `the input of ${activation} in layer ${last.name}`;
  const dispose = () => {
    try {
      head?.dispose();
    } catch {
      // already freed with the model
    }
  };
  if (activation === 'softmax')
    return {
      apply: (x, training) => pre.apply(x, { training }) as tf.Tensor2D,
      numClasses: k,
      source: 'softmax-input',
      note: `logits: ${where}`,
      dispose,
    };
  return {
    // σ(z) = softmax([0, z])[1]: the two-class logits of a one-unit sigmoid head
    apply: (x, training) =>
      tf.tidy(() => {
        const z = pre.apply(x, { training }) as tf.Tensor2D;
        return tf.concat([tf.zerosLike(z), z], 1) as tf.Tensor2D;
      }),
    numClasses: 2,
    source: 'sigmoid-input',
    note: `logits: [0, z] with z ${where} (a one-unit sigmoid is a two-class softmax)`,
    dispose,
  };
}
