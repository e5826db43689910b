/**
 * What a LayersModel computes in inference mode, as comparable data: its layers (class, the config
 * that affects outputs) and how they connect, with Dropout (identity at inference) left out and
 * chosen (conv, BatchNorm) pairs merged into one conv with a bias. Two models with equal graphs
 * and matching weights compute the same function — the check that makes BN folding safe.
 */
import type * as tf from '@tensorflow/tfjs';

interface LayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, unknown?][][];
}

/** Config keys that never change what a layer computes in inference mode. */
const IGNORED = /(^name$|^trainable$|^momentum$|initializer$|regularizer$|constraint$)/;

function comparableConfig(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !IGNORED.test(k)));
}

interface InferenceGraph {
  layers: Record<string, { cls: string; config: Record<string, unknown>; inputs: string[][] }>;
  inputs: unknown;
  outputs: unknown;
}

/**
 * The graph of `model` with each BN of `merge` (BN name → conv name) folded into its conv. Null
 * when a pair cannot be folded exactly: the BN does not read only that conv, something else reads
 * the conv, the conv already has a bias, or the BN lacks its scale or offset.
 */
export function inferenceGraph(
  model: tf.LayersModel,
  merge: Map<string, string> = new Map(),
): InferenceGraph | null {
  const topology = model.toJSON(null, false) as unknown as {
    config: { layers: LayerJson[]; input_layers: unknown; output_layers: [string, ...unknown[]][] };
  };
  const layers = topology.config.layers;
  const alias = new Map<string, string>();
  const convs = new Set(merge.values());
  for (const l of layers) {
    const sources = l.inbound_nodes.flat().map((r) => r[0]);
    if (l.class_name === 'Dropout' && sources.length === 1) alias.set(l.name, sources[0]);
    const conv = merge.get(l.name);
    if (conv !== undefined) {
      const c = l.config;
      const axis =
        c.axis === -1 || (Array.isArray(c.axis) && c.axis.length === 1 && c.axis[0] === -1);
      if (
        l.class_name !== 'BatchNormalization' ||
        sources.length !== 1 ||
        sources[0] !== conv ||
        !axis ||
        c.center === false ||
        c.scale === false
      )
        return null;
      alias.set(l.name, conv);
    } else if (sources.some((s) => convs.has(s))) return null; // a merged conv read by more than its BN
  }
  const resolve = (name: string): string => (alias.has(name) ? resolve(alias.get(name)!) : name);
  const graph: InferenceGraph = {
    layers: {},
    inputs: topology.config.input_layers,
    outputs: topology.config.output_layers.map(([n, ...rest]) => [resolve(n), ...rest]),
  };
  for (const l of layers) {
    if (alias.has(l.name)) continue;
    const config = comparableConfig(l.config);
    if (convs.has(l.name)) {
      if (config.use_bias !== false) return null;
      config.use_bias = true;
    }
    graph.layers[l.name] = {
      cls: l.class_name,
      config,
      inputs: l.inbound_nodes.map((call) => call.map((r) => `${resolve(r[0])}:${r[1]}:${r[2]}`)),
    };
  }
  return graph;
}

/** Deep equality in which numbers may differ by a relative 1e-12 (configs rebuilt from other configs round). */
export function sameGraph(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  if (Array.isArray(a) || Array.isArray(b))
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((v, i) => sameGraph(v, b[i]))
    );
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return (
      sameGraph(ka, kb) &&
      ka.every((k) =>
        sameGraph((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
      )
    );
  }
  return a === b;
}
