/**
 * Graph-model fused ops whose gradients are lazy.
 *
 * tensorflowjs_converter fuses a conv or matmul with its BiasAdd (and activation) into _FusedConv2D,
 * FusedDepthwiseConv2dNative and _FusedMatMul, which the graph executor runs through tf.fused.*.
 * Under a gradient tape those ops with no activation (MobileNet's linear bottlenecks, every
 * logits layer) keep their fused kernel and a custom gradient that computes the filter gradient
 * eagerly — work an attack throws away, and on wasm a DepthwiseConv2dNativeBackpropFilter per
 * depthwise layer. While a tape records, ours run the same op as its unfused parts, each with its
 * own lazy gradient (the conv and bias as one op, backend/conv-bias.ts, where it can), so an
 * input gradient computes no weight gradient. Outside a tape they run tf.fused.* exactly as the
 * converter does. Registered with tf.registerOp, which the converter consults before its own
 * mapping, so it applies to graph models loaded after registration.
 */
import tf from '#tfjs';
import { conv2dBias } from './conv-bias.js';

type Attrs = Record<string, unknown>;
interface GraphNode {
  inputs: tf.Tensor[];
  attrs: Attrs;
}
type Pad =
  'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'prelu' | 'leakyrelu' | 'sigmoid';

/** Whether a gradient tape is recording (tf.fused.* makes the same test: shouldFuse). */
const recording = () =>
  (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;

/** The converter's reading of `padding` / `explicit_paddings` (executors' getPadding). */
function padding(attrs: Attrs): Pad {
  const pad = attrs.padding as string;
  if (pad !== 'explicit') return pad as Pad;
  const p = (attrs.explicit_paddings as number[] | undefined) ?? [];
  return [0, 1, 2, 3].map((i) => [p[2 * i] ?? 0, p[2 * i + 1] ?? 0]) as Pad;
}

/** fused_ops = [extra op, activation], num_args and args as the converter checks and splits them. */
function fusedParts(node: GraphNode, what: string) {
  const [extra, activation = 'linear'] = ((node.attrs.fused_ops as string[] | undefined) ?? []).map(
    (s) => s.toLowerCase(),
  );
  const numArgs = node.attrs.num_args as number;
  const isBiasAdd = extra === 'biasadd';
  const isPrelu = activation === 'prelu';
  if (extra === 'fusedbatchnorm') throw new Error(`${what} with FusedBatchNorm is not supported`);
  if (isBiasAdd && isPrelu && numArgs !== 2)
    throw new Error(
      `${what} with BiasAdd and Prelu must have two extra arguments: bias and alpha.`,
    );
  if (isBiasAdd && !isPrelu && numArgs !== 1)
    throw new Error(`${what} with BiasAdd must have one extra argument: bias.`);
  let [bias, prelu] = node.inputs.slice(2) as (tf.Tensor | undefined)[];
  if (!isBiasAdd) [prelu, bias] = [bias, undefined];
  const leakyreluAlpha = (node.attrs.leakyrelu_alpha as number | undefined) ?? 0.2;
  return { bias, prelu, activation: activation as Activation, leakyreluAlpha, isBiasAdd };
}

function activate(
  y: tf.Tensor,
  activation: Activation,
  prelu: tf.Tensor | undefined,
  alpha: number,
): tf.Tensor {
  switch (activation) {
    case 'linear':
      return y;
    case 'relu':
      return tf.relu(y);
    case 'relu6':
      return tf.relu6(y);
    case 'elu':
      return tf.elu(y);
    case 'sigmoid':
      return tf.sigmoid(y);
    case 'leakyrelu':
      return tf.leakyRelu(y, alpha);
    case 'prelu':
      return tf.prelu(y, prelu!);
  }
  throw new Error(`Unknown fused activation ${activation as string}.`);
}

const pair = (list: number[] | undefined, fallback: number): [number, number] => [
  list?.[1] ?? fallback,
  list?.[2] ?? fallback,
];

function fusedConv2D(node: GraphNode): tf.Tensor {
  return tf.tidy(() => {
    const [x, filter] = node.inputs as [tf.Tensor4D, tf.Tensor4D];
    const { bias, prelu, activation, leakyreluAlpha } = fusedParts(node, 'FusedConv2d');
    const strides = pair(node.attrs.strides as number[], 1);
    const dilations = pair(node.attrs.dilations as number[] | undefined, 1);
    const pad = padding(node.attrs);
    const dataFormat = ((node.attrs.data_format as string | undefined) ?? 'nhwc').toUpperCase() as
      'NHWC' | 'NCHW';
    if (!recording() || dataFormat !== 'NHWC') {
      return tf.fused.conv2d({
        x,
        filter,
        strides,
        pad,
        dataFormat,
        dilations,
        bias,
        activation,
        preluActivationWeights: prelu,
        leakyreluAlpha,
      });
    }
    const simpleBias =
      bias !== undefined &&
      bias.rank === 1 &&
      (pad === 'same' || pad === 'valid') &&
      dilations.every((d) => d === 1);
    let y: tf.Tensor;
    if (simpleBias)
      y = conv2dBias(x, filter, bias as tf.Tensor1D, strides, pad as 'same' | 'valid');
    else {
      y = tf.conv2d(x, filter, strides, pad, 'NHWC', dilations);
      if (bias) y = tf.add(y, bias);
    }
    return activate(y, activation, prelu, leakyreluAlpha);
  });
}

function fusedDepthwiseConv2D(node: GraphNode): tf.Tensor {
  return tf.tidy(() => {
    const [x, filter] = node.inputs as [tf.Tensor4D, tf.Tensor4D];
    const { bias, prelu, activation, leakyreluAlpha } = fusedParts(node, 'FusedDepthwiseConv2d');
    const strides = pair(node.attrs.strides as number[], 1);
    const dilations = pair(node.attrs.dilations as number[] | undefined, 1);
    const pad = padding(node.attrs);
    const dataFormat = ((node.attrs.data_format as string | undefined) ?? 'nhwc').toUpperCase() as
      'NHWC' | 'NCHW';
    if (!recording() || dataFormat !== 'NHWC') {
      return tf.fused.depthwiseConv2d({
        x,
        filter,
        strides,
        pad: pad as 'same',
        dataFormat,
        dilations,
        bias,
        activation,
        preluActivationWeights: prelu,
        leakyreluAlpha,
      }); // explicit padding works too (as the converter passes it)
    }
    let y: tf.Tensor = tf.depthwiseConv2d(x, filter, strides, pad as 'same', 'NHWC', dilations);
    if (bias) y = tf.add(y, bias);
    return activate(y, activation, prelu, leakyreluAlpha);
  });
}

function fusedMatMul(node: GraphNode): tf.Tensor {
  return tf.tidy(() => {
    const [a, b] = node.inputs;
    const { bias, prelu, activation, leakyreluAlpha } = fusedParts(node, 'Fused MatMul');
    const transposeA = (node.attrs.transpose_a as boolean | undefined) ?? false;
    const transposeB = (node.attrs.transpose_b as boolean | undefined) ?? false;
    if (!recording())
      return tf.fused.matMul({
        a,
        b,
        transposeA,
        transposeB,
        bias,
        activation,
        preluActivationWeights: prelu,
        leakyreluAlpha,
      });
    let y = tf.matMul(a, b, transposeA, transposeB);
    if (bias) y = tf.add(y, bias);
    return activate(y, activation, prelu, leakyreluAlpha);
  });
}

export const GRAPH_OPS: Record<string, (node: GraphNode) => tf.Tensor> = {
  _FusedConv2D: fusedConv2D,
  FusedDepthwiseConv2dNative: fusedDepthwiseConv2D,
  _FusedMatMul: fusedMatMul,
};

/** Makes graph models loaded from now on run the fused ops above (idempotent). */
export function registerGraphOps(): void {
  for (const [name, op] of Object.entries(GRAPH_OPS))
    tf.registerOp(name, op as unknown as Parameters<typeof tf.registerOp>[1]);
}
