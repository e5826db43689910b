/**
 * TF.js GraphModels (tensorflowjs_converter on SavedModels, Keras models, TF Hub modules) as
 * attack targets: gradients come from the tape over `execute`, which records every op it runs.
 * The logits are the tensor feeding a final Softmax (or a one-unit Sigmoid), found in the graph;
 * `--output NODE` names any node instead.
 */
import tf from '#tfjs';
import { optionError, RobustError } from '../util/errors.js';
import type { ModelFiles } from './model-files.js';
import type { LogitsSource } from './layers-logits.js';
import { inputGrad } from '../backend/ops/gradients.js';

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
}

interface GraphLogits {
  model: tf.GraphModel;
  /** Logits for a batch of NHWC model inputs (already preprocessed). */
  apply(x: tf.Tensor4D): tf.Tensor2D;
  inputShape: [number, number, number];
  numClasses: number;
  source: LogitsSource;
  note?: string;
  /** The node executed for the logits. */
  logitsNode: string;
}

// Ops that need executeAsync (dynamic control flow): their graphs cannot be differentiated by tf.grad.
const CONTROL_FLOW = new Set([
  'Switch',
  'Merge',
  'Enter',
  'Exit',
  'NextIteration',
  'LoopCond',
  'While',
  'StatelessWhile',
  'If',
  'StatelessIf',
  'TensorListReserve',
  'NonMaxSuppressionV5',
]);
const MAX_NODES = 100_000;
const PASS_THROUGH = new Set(['Identity', 'Snapshot', 'StopGradient', 'PreventGradient']);

/** "name:0" or "^name" → "name". */
const nodeName = (ref: string) => ref.replace(/^\^/, '').replace(/:\d+$/, '');
/** A tensor reference as execute takes it: "name" or "name:k" (output k of node name). */
const tensorRef = (ref: string) => ref.replace(/^\^/, '').replace(/:0$/, '');

/** The nodes whose values depend on `input` (what an attack can move). */
function dependents(nodes: Map<string, GraphNode>, input: string): Set<string> {
  const readers = new Map<string, string[]>();
  for (const n of nodes.values())
    for (const i of n.input ?? [])
      if (!i.startsWith('^'))
        readers.set(nodeName(i), [...(readers.get(nodeName(i)) ?? []), n.name]);
  const seen = new Set([input]);
  const todo = [input];
  while (todo.length)
    for (const r of readers.get(todo.pop()!) ?? [])
      if (!seen.has(r)) {
        seen.add(r);
        todo.push(r);
      }
  return seen;
}

function graphNodes(files: ModelFiles): Map<string, GraphNode> {
  const nodes = (files.json.modelTopology as { node?: unknown }).node;
  if (!Array.isArray(nodes))
    throw new RobustError(`${files.jsonPath}: a graph-model without a node list`);
  // The largest common vision graphs have a few thousand nodes; tfjs's executor would otherwise plan any number.
  if (nodes.length > MAX_NODES)
    throw new RobustError(
      `${files.jsonPath}: ${nodes.length} graph nodes, more than robust loads (${MAX_NODES})`,
    );
  const map = new Map<string, GraphNode>();
  for (const n of nodes as Partial<GraphNode>[]) {
    if (
      !n ||
      typeof n.name !== 'string' ||
      typeof n.op !== 'string' ||
      (n.input !== undefined &&
        !(Array.isArray(n.input) && n.input.every((i) => typeof i === 'string')))
    ) {
      throw new RobustError(
        `${files.jsonPath}: malformed graph node ${JSON.stringify(n).slice(0, 80)}`,
      );
    }
    if (map.has(n.name))
      throw new RobustError(`${files.jsonPath}: graph node ${n.name} is defined twice`);
    map.set(n.name, n as GraphNode);
  }
  return map;
}

/** Every input names a node, and no node depends on itself: tfjs's executor assumes both. */
function checkAcyclic(file: string, nodes: Map<string, GraphNode>): void {
  const state = new Map<string, 1 | 2>(); // 1: on the current path, 2: done
  for (const root of nodes.keys()) {
    if (state.has(root)) continue;
    const stack: [string, number][] = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const inputs = nodes.get(top[0])!.input ?? [];
      if (top[1] === inputs.length) {
        state.set(top[0], 2);
        stack.pop();
        continue;
      }
      const next = nodeName(inputs[top[1]++]);
      if (!nodes.has(next))
        throw new RobustError(
          `${file}: graph node ${top[0]} takes ${next}, which is not in the graph`,
        );
      const s = state.get(next);
      if (s === 1) throw new RobustError(`${file}: the graph has a cycle through node ${next}`);
      if (s === undefined) {
        state.set(next, 1);
        stack.push([next, 0]);
      }
    }
  }
}

/** Through Identity-like nodes to the op that makes `name`. */
function producer(nodes: Map<string, GraphNode>, name: string): GraphNode | undefined {
  let node = nodes.get(nodeName(name));
  for (let hops = 0; node && PASS_THROUGH.has(node.op) && node.input?.length && hops < 100; hops++)
    node = nodes.get(nodeName(node.input[0]));
  return node;
}

/** Loads a graph-model from files read by `readModelFiles` and finds its logits. */
export async function loadGraphLogits(files: ModelFiles, output?: string): Promise<GraphLogits> {
  const file = files.jsonPath;
  const nodes = graphNodes(files);
  const flow = [
    ...new Set([...nodes.values()].map((n) => n.op).filter((op) => CONTROL_FLOW.has(op))),
  ];
  if (flow.length)
    throw new RobustError(
      `${file}: the graph uses dynamic control flow (${flow.join(', ')}), which tf.grad cannot differentiate; robust attacks graphs without it`,
    );
  checkAcyclic(file, nodes);
  if (output !== undefined && !nodes.has(nodeName(output)))
    throw new RobustError(`${file}: no node named '${nodeName(output)}' in the graph`);
  let model: tf.GraphModel;
  // tfjs reads versions.producer unguarded; a graph without versions is otherwise fine
  const topology = { versions: {}, ...(files.json.modelTopology as object) };
  try {
    model = await tf.loadGraphModel(
      tf.io.fromMemory({
        modelTopology: topology,
        weightSpecs: files.specs,
        weightData: files.weightData,
        format: 'graph-model',
        signature: files.json.signature as object,
        userDefinedMetadata: files.json.userDefinedMetadata,
      }),
    );
  } catch (e) {
    throw e instanceof RobustError
      ? e
      : new RobustError(`${file}: cannot load the graph (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    return describe(model, nodes, file, output);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function describe(
  model: tf.GraphModel,
  nodes: Map<string, GraphNode>,
  file: string,
  output?: string,
): GraphLogits {
  if (model.inputs.length !== 1)
    throw new RobustError(
      `${file}: the graph has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); robust attacks models with one image input`,
    );
  const input = model.inputs[0];
  if (input.dtype !== 'float32')
    throw new RobustError(
      `${file}: the graph takes ${input.dtype} inputs, through which no gradient flows: convert it with a float32 input`,
    );
  const shape = input.shape ?? [];
  if (shape.length !== 4 || shape.slice(1).some((d) => !(d > 0)))
    throw new RobustError(
      `${file}: the graph's input has shape [${shape.join(', ')}], not [batch, height, width, channels] with known sizes`,
    );
  // NCHW graphs (converted from PyTorch through ONNX) take channels second.
  const nchw = [1, 3].includes(shape[1]) && ![1, 3].includes(shape[3]);
  const [h, w, c] = nchw ? [shape[2], shape[3], shape[1]] : [shape[1], shape[2], shape[3]];
  const fixedBatch = shape[0] > 0 ? shape[0] : 0;
  let logitsNode: string;
  let source: LogitsSource = 'outputs';
  let note: string | undefined;
  if (output !== undefined) {
    logitsNode = tensorRef(output);
    source = 'named';
    note = `logits: ${logitsNode} (--output)`;
  } else {
    // outputs' names are graph tensors, "node" or "node:k" (outputNodes are the signature's keys when it has one)
    const outs = model.outputs.map((o) => tensorRef(o.name));
    if (outs.length !== 1)
      throw optionError(
        (n) =>
          `${file}: the graph has ${outs.length} outputs (${outs.join(', ')}): name the logits node with ${n('output')} NODE`,
      );
    logitsNode = outs[0];
    // only output 0 of a node can be a Softmax's (it has one)
    const last = /:\d+$/.test(logitsNode) ? undefined : producer(nodes, logitsNode);
    if (last && (last.op === 'Softmax' || last.op === 'Sigmoid') && last.input?.length) {
      logitsNode = tensorRef(last.input[0]);
      source = last.op === 'Softmax' ? 'softmax-input' : 'sigmoid-input';
      note = `logits: node ${logitsNode}, the input of ${last.op} node ${last.name}`;
    } else if (last?.op === 'LogSoftmax') {
      source = 'log-softmax';
      note = `logits: the log-softmax outputs of node ${last.name} (logits up to a constant per image)`;
    }
  }
  const inputName = nodeName(input.name);
  // an output that does not move with the input (a Const, a weight) has no gradient to follow
  if (!dependents(nodes, inputName).has(nodeName(logitsNode)))
    throw new RobustError(
      `${file}: ${logitsNode} does not depend on the input ${inputName}: it cannot be the logits`,
    );
  const run = (x: tf.Tensor4D): tf.Tensor2D => {
    const out = model.execute({ [inputName]: nchw ? x.transpose([0, 3, 1, 2]) : x }, logitsNode) as
      tf.Tensor | undefined;
    if (!out) throw new RobustError(`${file}: the graph has no tensor ${logitsNode}`);
    // [N, K] logits, or [N, 1, 1, K] as a convolutional head leaves them; anything else is not a class score per image
    if (out.rank < 2 || out.shape.slice(1, -1).some((d) => d !== 1))
      throw optionError(
        (n) =>
          `${file}: ${logitsNode} has shape [${out.shape.join(', ')}], not [batch, classes]: name the logits with ${n('output')} NODE`,
      );
    return (
      out.rank === 2 ? out : out.reshape([out.shape[0], out.shape[out.rank - 1]])
    ) as tf.Tensor2D;
  };
  const sigmoid = source === 'sigmoid-input';
  const apply = (x: tf.Tensor4D): tf.Tensor2D =>
    tf.tidy(() => {
      let z: tf.Tensor2D;
      if (fixedBatch && x.shape[0] !== fixedBatch) {
        // A graph frozen at one batch size: run it on slices of that size, the last one padded.
        const parts: tf.Tensor2D[] = [];
        for (let i = 0; i < x.shape[0]; i += fixedBatch) {
          const n = Math.min(fixedBatch, x.shape[0] - i);
          let slice = x.slice([i, 0, 0, 0], [n, -1, -1, -1]);
          if (n < fixedBatch)
            slice = slice.concat(tf.zeros([fixedBatch - n, h, w, c]) as tf.Tensor4D, 0);
          parts.push(run(slice).slice([0, 0], [n, -1]));
        }
        z = tf.concat(parts, 0);
      } else z = run(x);
      if (sigmoid && z.shape[1] !== 1)
        throw optionError(
          (n) =>
            `${file}: the graph ends in a ${z.shape[1]}-unit sigmoid (multi-label outputs): name the logits node with ${n('output')} NODE`,
        );
      return sigmoid ? (tf.concat([tf.zerosLike(z), z], 1) as tf.Tensor2D) : z;
    });
  // One pass on zeros tells the number of classes and proves the graph runs.
  let k: number;
  try {
    const probe = tf.tidy(() => apply(tf.zeros([fixedBatch || 1, h, w, c]) as tf.Tensor4D));
    k = probe.shape[1];
    probe.dispose();
  } catch (e) {
    throw e instanceof RobustError
      ? e
      : new RobustError(
          `${file}: the graph does not run on this backend (${(e as Error).message.split('\n')[0]})`,
        );
  }
  // And one input gradient: an op without a gradient in tfjs (StridedSlice, DepthToSpace…) is one line here, not a crash mid-attack.
  try {
    tf.tidy(() =>
      inputGrad((x: tf.Tensor) => apply(x as tf.Tensor4D).sum())(
        tf.zeros([fixedBatch || 1, h, w, c]),
      ),
    );
  } catch (e) {
    const m = /gradient function not found for (\w+)/i.exec((e as Error).message);
    throw new RobustError(
      `${file}: ${m ? `op ${m[1]} has no gradient in TF.js` : `no input gradient on this backend (${(e as Error).message.split('\n')[0]})`}: gradient attacks cannot run on this graph`,
    );
  }
  if (nchw)
    note = `${note ?? "logits: the graph's output"}; NCHW input (channels first, read from its shape [${shape.join(', ')}])`;
  return { model, apply, inputShape: [h, w, c], numClasses: k, source, note, logitsNode };
}
