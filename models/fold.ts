/**
 * BatchNorm folding for inference. Attacks and evaluation run models in inference mode, where a
 * BN layer is a fixed per-channel affine map, so a conv followed by BN is one conv with
 * W' = W·γ/√(σ²+ε) and b' = β − μ·γ/√(σ²+ε). The folded copy computes the same logits (and input
 * gradients) with ~20 fewer layers of elementwise work per pass.
 */
import tf from '#tfjs';
import { buildResNet, foldedPairs } from './resnet.js';
import { ZOO } from './zoo.js';
import { inferenceGraph, sameGraph } from './inference-graph.js';
import type { Classifier } from './classifier.js';
import { fusedFoldedApply } from './fused-folded.js';

interface RescalingConfig {
  scale: number | number[];
  offset: number | number[];
}

/** The BN-folded structure of a zoo ResNet (weights not set); null if `model` is not one. */
function buildFolded(model: tf.LayersModel): tf.LayersModel | null {
  const meta = (
    model.getUserDefinedMetadata() as { robust?: { model?: string; width?: number } } | undefined
  )?.robust;
  const entry = ZOO.find((e) => e.name === meta?.model);
  const rescale = model.layers.find((l) => l.getClassName() === 'Rescaling');
  if (!entry || !rescale) return null;
  const cfg = rescale.getConfig() as unknown as RescalingConfig;
  const scale = [cfg.scale].flat();
  const offset = [cfg.offset].flat();
  const [, h, w, c] = model.inputs[0].shape as number[];
  const out = model.outputs[0].shape;
  const std = Array.from({ length: c }, (_, i) => 1 / scale[i % scale.length]);
  const mean = std.map((s, i) => -offset[i % offset.length] * s);
  let folded: tf.LayersModel;
  try {
    folded = buildResNet(
      { ...entry.spec, width: meta?.width ?? entry.spec.width },
      {
        inputShape: [h, w, c],
        numClasses: out[out.length - 1] as number,
        mean,
        std,
        foldBatchNorm: true,
        name: model.name,
      },
    );
  } catch {
    return null;
  }
  // The metadata only names an architecture: fold only if the loaded layers are exactly what the
  // folded copy stands for (a changed layer or a softmax head would otherwise be evaluated as the zoo model).
  const merge = new Map((foldedPairs.get(folded) ?? []).map(([conv, bn]) => [bn, conv]));
  const loaded = inferenceGraph(model, merge);
  if (!loaded || !sameGraph(loaded, inferenceGraph(folded))) {
    folded.dispose();
    return null;
  }
  return folded;
}

/** Copies `model`'s current weights into its folded structure, each (conv, BN) pair as one conv. */
function copyFoldedWeights(model: tf.LayersModel, folded: tf.LayersModel): void {
  const pairs = new Map(foldedPairs.get(folded) ?? []);
  for (const layer of folded.layers) {
    if (layer.getWeights().length === 0) continue;
    const bnName = pairs.get(layer.name);
    const original = model.getLayer(layer.name);
    if (!bnName) {
      layer.setWeights(original.getWeights());
      continue;
    }
    const bn = model.getLayer(bnName);
    const eps = (bn.getConfig() as { epsilon: number }).epsilon;
    const [kernel] = original.getWeights();
    const [gamma, beta, movingMean, movingVar] = bn.getWeights();
    const weights = tf.tidy(() => {
      const s = gamma.div(movingVar.add(eps).sqrt());
      return [kernel.mul(s), beta.sub(movingMean.mul(s))];
    });
    layer.setWeights(weights);
    tf.dispose(weights);
  }
}

/** The inference-mode copy of a zoo ResNet with BN folded into its convs; null if `model` is not one. */
export function foldBatchNorm(model: tf.LayersModel): tf.LayersModel | null {
  const folded = buildFolded(model);
  if (folded) copyFoldedWeights(model, folded);
  return folded;
}

/**
 * A folded copy that follows a model whose weights change (adversarial training attacks the
 * current model in inference mode every batch): built once, `refresh()` re-folds the current
 * weights (a few small tensors) before each use. The classifier runs the copy in inference mode
 * and the model itself in train mode.
 */
export function followingFoldedClassifier(
  model: tf.LayersModel,
): (Classifier & { refresh(): void }) | null {
  const folded = buildFolded(model);
  if (!folded) return null;
  const out = model.outputs[0].shape;
  // conv–ReLU and conv–Add–ReLU as one op each where our kernels run (models/fused-folded.ts)
  const inference =
    fusedFoldedApply(folded) ?? ((x: tf.Tensor) => folded.apply(x, { training: false }));
  return {
    numClasses: out[out.length - 1] as number,
    randomized: false,
    statefulWeights: model.nonTrainableWeights,
    logits: (x, mode) =>
      (mode === 'inference'
        ? inference(x)
        : model.apply(x, { training: mode === 'train' })) as tf.Tensor2D,
    refresh: () => copyFoldedWeights(model, folded),
    dispose: () => folded.dispose(),
  };
}

/**
 * A zoo ResNet as a Classifier that runs its BN-folded copy in inference mode and the model itself
 * in train mode. The copy is made once: use it for fixed weights (attacks, evaluation), not during
 * training.
 */
export function foldedClassifier(model: tf.LayersModel): Classifier | null {
  const c = followingFoldedClassifier(model);
  c?.refresh();
  return c;
}
