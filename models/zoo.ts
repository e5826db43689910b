/** The model zoo: every architecture by name, with what `robust models` prints about it. */
import tf from '#tfjs';
import { optionError, RobustError } from '../util/errors.js';
import { buildResNet, type BuildOptions, type ResNetSpec } from './resnet.js';

interface ZooEntry {
  name: string;
  family: 'resnet' | 'cifar-resnet' | 'preact-resnet';
  spec: ResNetSpec;
  description: string;
}

const classic = (name: string, block: 'basic' | 'bottleneck', stages: number[]): ZooEntry => ({
  name,
  family: 'resnet',
  spec: { block, stages, width: 64 },
  description: `ResNet-${name.slice(6)} (${block === 'basic' ? 'BasicBlock' : 'Bottleneck'} ${stages.join('-')}), CIFAR stem: 3×3 conv, no max-pool`,
});

const cifar = (depth: number): ZooEntry => {
  const n = (depth - 2) / 6;
  return {
    name: `resnet${depth}`,
    family: 'cifar-resnet',
    spec: { block: 'basic', stages: [n, n, n], width: 16 },
    description: `CIFAR ResNet-${depth} (He et al. 2016): 3 stages × ${n} BasicBlocks, 16/32/64 filters, projection shortcuts`,
  };
};

export const ZOO: readonly ZooEntry[] = [
  classic('resnet18', 'basic', [2, 2, 2, 2]),
  classic('resnet34', 'basic', [3, 4, 6, 3]),
  classic('resnet50', 'bottleneck', [3, 4, 6, 3]),
  classic('resnet101', 'bottleneck', [3, 4, 23, 3]),
  classic('resnet152', 'bottleneck', [3, 8, 36, 3]),
  cifar(20),
  cifar(32),
  cifar(44),
  cifar(56),
  cifar(110),
  {
    name: 'preact-resnet18',
    family: 'preact-resnet',
    spec: { block: 'preact', stages: [2, 2, 2, 2], width: 64 },
    description:
      'PreAct ResNet-18 (He et al. 2016b): BN–ReLU before convs, final BN–ReLU before pooling',
  },
];

export function zooEntry(name: string): ZooEntry {
  const entry = ZOO.find((e) => e.name === name.toLowerCase());
  if (!entry)
    throw new RobustError(
      `unknown model '${name}': choose one of ${ZOO.map((e) => e.name).join(', ')}`,
    );
  return entry;
}

interface ModelOptions extends BuildOptions {
  /** Channels of the first stage, overriding the architecture's default. */
  width?: number;
}

/** Builds a zoo model by name. */
export function createModel(name: string, opts: ModelOptions): tf.LayersModel {
  const entry = zooEntry(name);
  const width = opts.width ?? entry.spec.width;
  if (!Number.isInteger(width) || width < 1)
    throw optionError((n) => `${n('width')} must be a positive integer, got ${opts.width}`);
  const model = buildResNet({ ...entry.spec, width }, { ...opts, name: entry.name });
  return model;
}

/** Trainable parameters: what PyTorch's `sum(p.numel() for p in model.parameters())` counts. */
export function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce(
    (n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1),
    0,
  );
}

/** Multiply–accumulates per image of the convolutions and dense layers. */
export function countMacs(model: tf.LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'Conv2D') {
      const out = layer.outputShape as number[];
      const kernel = layer.weights[0].shape as number[]; // the variable's shape: no read of its values
      macs += out[1] * out[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3];
    } else if (cls === 'Dense') {
      const kernel = layer.weights[0].shape as number[];
      macs += kernel[0] * kernel[1];
    }
  }
  return macs;
}
