/**
 * The inference pass of a BN-folded zoo ResNet with its conv–ReLU and conv–Add–ReLU chains as one
 * op each (backend/ops/conv-bias-relu.ts): on wasm the Add and the ReLU happen in the conv
 * kernels' epilogue, ~28 passes over activations fewer per ResNet-20 forward and a tape of fewer
 * nodes for the input gradient. The same values bit for bit as the folded model's apply (each op
 * computes what the layers it stands for compute, in the same order); tests compare both.
 *
 * Used by the folded classifier where the fused kernel exists (wasm with our kernels); elsewhere,
 * and for any layer it does not know, the model's own apply runs.
 */
import tf from '#tfjs';
import { CONV2D_BIAS_RELU, conv2dBiasRelu } from '../backend/ops/conv-bias-relu.js';

interface LayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, unknown?][][];
}

interface ConvFields {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: [number, number];
  padding: string;
  dataFormat: string;
  dilationRate: [number, number];
}

/** One step of the pass: a layer applied as tfjs-layers does, or a fused conv–(Add–)ReLU. */
type Step =
  | { kind: 'layer'; name: string; layer: tf.layers.Layer; inputs: string[] }
  | { kind: 'fused'; name: string; conv: tf.layers.Layer; input: string; residual: string | null };

/** Layers whose inference-mode call the pass may run as it is (the zoo ResNets' other layers). */
const PLAIN = new Set([
  'Rescaling',
  'Conv2D',
  'ReLU',
  'Add',
  'GlobalAveragePooling2D',
  'Dense',
  'Dropout',
]);

/** The pass's steps for `model`, or null when a layer is not one the pass knows. */
function plan(model: tf.LayersModel): Step[] | null {
  const topology = model.toJSON(null, false) as unknown as {
    config: { layers: LayerJson[]; output_layers: [string, ...unknown[]][] };
  };
  const layers = topology.config.layers;
  const byName = new Map(layers.map((l) => [l.name, l]));
  const sources = (l: LayerJson) => l.inbound_nodes.flat().map((r) => r[0]);
  if (layers.some((l) => l.inbound_nodes.length > 1)) return null; // a layer called twice
  const readers = new Map<string, number>();
  for (const l of layers) for (const s of sources(l)) readers.set(s, (readers.get(s) ?? 0) + 1);
  for (const [o] of topology.config.output_layers) readers.set(o, (readers.get(o) ?? 0) + 1);
  const readOnce = (name: string) => readers.get(name) === 1;
  // A conv the fused op computes exactly: NHWC, undilated, a bias, no activation of its own.
  const fusible = (name: string) => {
    const l = byName.get(name);
    if (!l || l.class_name !== 'Conv2D' || !readOnce(name)) return false;
    const c = model.getLayer(name) as unknown as ConvFields & {
      getConfig(): { activation: string };
    };
    return (
      c.bias !== null &&
      c.dataFormat === 'channelsLast' &&
      (c.padding === 'same' || c.padding === 'valid') &&
      c.dilationRate.every((d) => d === 1) &&
      c.getConfig().activation === 'linear'
    );
  };
  const folded = new Set<string>();
  const steps: Step[] = [];
  for (const l of layers) {
    if (l.class_name === 'InputLayer') continue;
    if (!PLAIN.has(l.class_name)) return null;
    const src = sources(l);
    if (l.class_name === 'ReLU' && l.config.max_value == null && src.length === 1) {
      const s = byName.get(src[0])!;
      if (fusible(s.name)) {
        steps.push({
          kind: 'fused',
          name: l.name,
          conv: model.getLayer(s.name),
          input: sources(s)[0],
          residual: null,
        });
        folded.add(s.name);
        continue;
      }
      const add = sources(s);
      if (s.class_name === 'Add' && readOnce(s.name) && add.length === 2) {
        const i = add.findIndex(fusible);
        if (i >= 0) {
          const conv = byName.get(add[i])!;
          steps.push({
            kind: 'fused',
            name: l.name,
            conv: model.getLayer(conv.name),
            input: sources(conv)[0],
            residual: add[1 - i],
          });
          folded.add(conv.name).add(s.name);
          continue;
        }
      }
    }
    steps.push({ kind: 'layer', name: l.name, layer: model.getLayer(l.name), inputs: src });
  }
  // The fused convs and Adds were planned before their ReLU: drop their own steps.
  return steps.filter((s) => !folded.has(s.name));
}

/**
 * `model`'s inference-mode logits with the fused ops, or null when its layers are not all ones the
 * pass knows (then use model.apply). The returned function falls back to model.apply itself where
 * the fused kernel is not registered and for inputs of another shape than the model's.
 */
export function fusedFoldedApply(model: tf.LayersModel): ((x: tf.Tensor) => tf.Tensor) | null {
  const steps = plan(model);
  if (!steps || steps.every((s) => s.kind === 'layer')) return null;
  const inputName = model.inputNames[0];
  const inputShape = model.inputs[0].shape.slice(1);
  const output = model.outputNames[0];
  return (x) => {
    if (
      model.inputs.length !== 1 ||
      !tf.getKernel(CONV2D_BIAS_RELU, tf.getBackend()) ||
      x.rank !== inputShape.length + 1 ||
      x.shape.slice(1).some((d, i) => d !== inputShape[i])
    )
      return model.apply(x, { training: false }) as tf.Tensor;
    return tf.tidy(() => {
      const values = new Map<string, tf.Tensor>([[inputName, x]]);
      const get = (name: string) => values.get(name)!;
      for (const s of steps) {
        if (s.kind === 'layer') {
          const ins = s.inputs.map(get);
          values.set(
            s.name,
            s.layer.apply(ins.length === 1 ? ins[0] : ins, { training: false }) as tf.Tensor,
          );
          continue;
        }
        const c = s.conv as unknown as ConvFields;
        values.set(
          s.name,
          conv2dBiasRelu(
            get(s.input) as tf.Tensor4D,
            c.kernel.read() as tf.Tensor4D,
            c.bias!.read() as tf.Tensor1D,
            s.residual === null ? null : (get(s.residual) as tf.Tensor4D),
            c.strides,
            c.padding as 'same' | 'valid',
          ),
        );
      }
      return get(output);
    });
  };
}
