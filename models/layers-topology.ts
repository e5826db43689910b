/**
 * Checks a LayersModel topology from a file before tfjs sees it: every layer class must be one
 * tfjs builds itself (a custom or Lambda layer cannot be rebuilt from JSON), names unique, and the
 * layer graph callable. tfjs's Container.fromConfig re-queues a call whose input does not exist yet
 * and loops forever when it never will (a misspelt inbound layer, a node index past the end, a
 * cycle), so the same queue is run here, stopping when a pass makes no progress.
 */
import tf from '#tfjs';
import { RobustError } from '../util/errors.js';

const MAX_LAYERS = 5000;
const CONTAINERS = new Set(['Model', 'Functional', 'Sequential']);

type NodeRef = [string, number, number, ...unknown[]];
interface LayerEntry {
  name?: unknown;
  class_name?: unknown;
  config?: unknown;
  inbound_nodes?: unknown;
}

/** The layer classes tfjs can build from JSON (its serialization registry, layers only). */
function builtInLayerClasses(): Set<string> {
  const registry = tf.serialization.SerializationMap.getMap().classNameMap;
  const names = Object.entries(registry)
    .filter(([, [cls]]) => (cls as { prototype?: unknown }).prototype instanceof tf.layers.Layer)
    .map(([name]) => name);
  return new Set(names);
}

/** The model config inside a model.json's modelTopology (Keras files wrap it in model_config). */
function modelConfig(topology: object): { class_name?: unknown; config?: unknown } {
  const t = topology as { model_config?: unknown };
  return (t.model_config && typeof t.model_config === 'object' ? t.model_config : topology) as {
    class_name?: unknown;
    config?: unknown;
  };
}

/** Layer entries of a Sequential or functional config (a Sequential may be a bare list, Keras 1 style). */
function layersOf(model: { class_name?: unknown; config?: unknown }): LayerEntry[] | null {
  const c = model.config;
  if (Array.isArray(c)) return c as LayerEntry[];
  const layers = (c as { layers?: unknown } | undefined)?.layers;
  return Array.isArray(layers) ? (layers as LayerEntry[]) : null;
}

/** Throws a one-line RobustError naming `file` when the topology cannot be built as stored. */
export function checkTopology(file: string, topology: object): void {
  const bad = (why: string) => new RobustError(`${file}: ${why}`);
  const root = modelConfig(topology);
  if (!CONTAINERS.has(String(root.class_name)) || !layersOf(root)) {
    throw bad(
      `not a TF.js layers model (expected class Sequential, Model or Functional with a layers list, got ${JSON.stringify(root.class_name)?.slice(0, 40)})`,
    );
  }
  const known = builtInLayerClasses();
  let count = 0;
  const unknown = new Set<string>();
  const visit = (model: { class_name?: unknown; config?: unknown }, depth: number): void => {
    if (depth > 20) throw bad('models nested more than 20 deep');
    const layers = layersOf(model);
    if (!layers)
      throw bad(
        `nested model ${JSON.stringify((model.config as { name?: unknown })?.name)} has no layers list`,
      );
    // Call-order checks and tfjs's own build are quadratic in the worst order: a few MB of JSON
    // listing 20,000 layers backwards kept both busy for hours. The largest common vision nets have ~1,000.
    count += layers.length;
    if (count > MAX_LAYERS) throw bad(`${count} layers, more than robust loads (${MAX_LAYERS})`);
    for (const l of layers) {
      const cls = String(l?.class_name);
      if (CONTAINERS.has(cls)) visit(l as { class_name?: unknown; config?: unknown }, depth + 1);
      else if (!known.has(cls)) unknown.add(cls);
    }
    if (model.class_name !== 'Sequential') checkCallOrder(bad, layers);
  };
  visit(root, 0);
  if (unknown.size > 0) {
    throw bad(
      `layer class ${[...unknown].join(', ')} is not a built-in TF.js layer (custom and Lambda layers cannot be rebuilt from model.json; convert the model as a GraphModel instead)`,
    );
  }
}

function checkCallOrder(bad: (why: string) => RobustError, layers: LayerEntry[]): void {
  const isRef = (r: unknown): r is NodeRef =>
    Array.isArray(r) &&
    typeof r[0] === 'string' &&
    Number.isInteger(r[1]) &&
    (r[1] as number) >= 0 &&
    Number.isInteger(r[2]) &&
    (r[2] as number) >= 0;
  const nodes = new Map<string, number>(); // layer name → calls made so far
  const pending: { layer: string; inputs: NodeRef[] }[] = [];
  for (const l of layers) {
    if (typeof l?.name !== 'string' || nodes.has(l.name))
      throw bad(`layer name ${JSON.stringify(l?.name)} is missing or repeated`);
    const calls = l.inbound_nodes;
    if (
      Array.isArray(calls) &&
      calls.some((call) => call && typeof call === 'object' && !Array.isArray(call))
    ) {
      throw bad(
        `layer ${l.name} is in the Keras 3 format, which TF.js cannot read: convert the model with tf_keras (Keras 2) or as a GraphModel`,
      );
    }
    if (!Array.isArray(calls) || !calls.every((call) => Array.isArray(call) && call.every(isRef)))
      throw bad(`layer ${l.name} has malformed inbound_nodes`);
    nodes.set(l.name, l.class_name === 'InputLayer' ? 1 : 0); // an input layer's node exists from the start
    for (const inputs of calls as NodeRef[][]) pending.push({ layer: l.name, inputs });
  }
  while (pending.length > 0) {
    const before = pending.length;
    for (let i = 0; i < pending.length;) {
      const { layer, inputs } = pending[i];
      if (inputs.every(([from, node]) => (nodes.get(from) ?? 0) > node)) {
        if (inputs.length > 0) nodes.set(layer, nodes.get(layer)! + 1);
        pending.splice(i, 1);
      } else i++;
    }
    if (pending.length === before)
      throw bad(
        `layer ${pending[0].layer} takes an input that no layer produces (a missing layer or node, or a cycle)`,
      );
  }
}
