/**
 * ResNet builders as tf.layers functional models, so a checkpoint is a plain TF.js LayersModel.
 *
 * Three families, matching the reference PyTorch definitions parameter for parameter:
 *  - "classic" ResNet-18/34/50/101/152 adapted to CIFAR (3×3 stem, no max-pool), BasicBlock or
 *    Bottleneck, 1×1 conv + BN projection when the shape changes;
 *  - the CIFAR ResNet-6n+2 of He et al. (16/32/64 filters) with projection shortcuts;
 *  - PreAct ResNet-18 (BN–ReLU before each conv, final BN–ReLU before pooling).
 * Per-channel normalization is the first layer (a Rescaling layer with per-channel scale and
 * offset), so models take [0,1] pixels and attack budgets are in pixel units.
 */
import tf from '#tfjs';
import { lazyConv2d } from './lazy-conv.js';
import { fusedBatchNorm } from './fused-batchnorm.js';
import { seededDropout } from './seeded-dropout.js';

export type BlockKind = 'basic' | 'bottleneck' | 'preact';

export interface ResNetSpec {
  block: BlockKind;
  /** Blocks per stage. */
  stages: number[];
  /** Channels of the first stage; each later stage doubles it. */
  width: number;
}

export interface BuildOptions {
  inputShape: [number, number, number];
  numClasses: number;
  /** Per-channel mean and std of the training data, in [0,1] pixel units. */
  mean: number[];
  std: number[];
  /** Seeds the initializers so that the same seed builds the same weights. */
  seed?: number;
  /** Dropout before the classifier (0 = none). */
  dropout?: number;
  /** Dropout inside each residual block, between its convolutions (0 = none), as in Wide ResNets. */
  blockDropout?: number;
  /**
   * Inference-only variant: every conv directly followed by a BatchNorm becomes one conv with a
   * bias (same layer name), and that BN layer is left out. Weights come from `foldBatchNorm`.
   */
  foldBatchNorm?: boolean;
  /**
   * Zero weights instead of seeded random draws: for counting parameters and MACs (`robust
   * models`), where the ~170 M random draws of the whole zoo cost ~10 s of CPU and are never used.
   */
  zeroWeights?: boolean;
  name?: string;
}

const BN_MOMENTUM = 0.9; // = PyTorch momentum 0.1
const BN_EPSILON = 1e-5;

type SymbolicTensor = tf.SymbolicTensor;

class Builder {
  private seed: number;
  /** (conv, BN) layer-name pairs merged into one conv (fold mode). */
  readonly folded: [string, string][] = [];
  constructor(
    seed: number,
    private readonly blockDropout = 0,
    private readonly fold = false,
    private readonly zeroWeights = false,
  ) {
    // tfjs initializers treat a seed of 0 as "unseeded", so per-layer seeds start at 1.
    this.seed = (seed % 10007) * 10007 + 1;
  }

  private nextSeed(): number {
    return this.seed++;
  }

  /** The layer's seeded initializer, or zeros when only the shapes matter (the seed is still drawn, so seeds do not shift). */
  private init(seeded: (args: { seed: number }) => ReturnType<typeof tf.initializers.zeros>) {
    const seed = this.nextSeed();
    return this.zeroWeights ? tf.initializers.zeros() : seeded({ seed });
  }

  conv(
    x: SymbolicTensor,
    filters: number,
    kernel: number,
    stride: number,
    name: string,
    useBias = false,
  ): SymbolicTensor {
    return lazyConv2d({
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: 'same',
      useBias,
      kernelInitializer: this.init(tf.initializers.heNormal),
      name,
    }).apply(x) as SymbolicTensor;
  }

  /** conv then BN — or, in fold mode, one conv with a bias standing for both. */
  convBn(
    x: SymbolicTensor,
    filters: number,
    kernel: number,
    stride: number,
    convName: string,
    bnName: string,
  ): SymbolicTensor {
    if (!this.fold) return this.bn(this.conv(x, filters, kernel, stride, convName), bnName);
    this.folded.push([convName, bnName]);
    return this.conv(x, filters, kernel, stride, convName, true);
  }

  bn(x: SymbolicTensor, name: string): SymbolicTensor {
    return fusedBatchNorm({ axis: -1, momentum: BN_MOMENTUM, epsilon: BN_EPSILON, name }).apply(
      x,
    ) as SymbolicTensor;
  }

  /** Dropout (training only) when the model has block dropout; a train step seeds its masks (models/seeded-dropout.ts). */
  dropout(x: SymbolicTensor, name: string): SymbolicTensor {
    return this.blockDropout > 0
      ? (seededDropout({ rate: this.blockDropout, name }).apply(x) as SymbolicTensor)
      : x;
  }

  relu(x: SymbolicTensor, name: string): SymbolicTensor {
    return tf.layers.reLU({ name }).apply(x) as SymbolicTensor;
  }

  add(a: SymbolicTensor, b: SymbolicTensor, name: string): SymbolicTensor {
    return tf.layers.add({ name }).apply([a, b]) as SymbolicTensor;
  }

  dense(x: SymbolicTensor, units: number, name: string): SymbolicTensor {
    return tf.layers
      .dense({
        units,
        kernelInitializer: this.init(tf.initializers.glorotUniform),
        name,
      })
      .apply(x) as SymbolicTensor;
  }
}

/** conv3×3–BN–ReLU–conv3×3–BN, plus the (projected) input, then ReLU. */
function basicBlock(
  b: Builder,
  x: SymbolicTensor,
  inC: number,
  outC: number,
  stride: number,
  p: string,
): [SymbolicTensor, number] {
  let y = b.dropout(
    b.relu(b.convBn(x, outC, 3, stride, `${p}_conv1`, `${p}_bn1`), `${p}_relu1`),
    `${p}_drop`,
  );
  y = b.convBn(y, outC, 3, 1, `${p}_conv2`, `${p}_bn2`);
  const shortcut =
    stride !== 1 || inC !== outC ? b.convBn(x, outC, 1, stride, `${p}_proj`, `${p}_proj_bn`) : x;
  return [b.relu(b.add(y, shortcut, `${p}_add`), `${p}_out`), outC];
}

/** 1×1 reduce – 3×3 (strided) – 1×1 expand (×4), each with BN, projection when shapes differ. */
function bottleneck(
  b: Builder,
  x: SymbolicTensor,
  inC: number,
  planes: number,
  stride: number,
  p: string,
): [SymbolicTensor, number] {
  const outC = planes * 4;
  let y = b.relu(b.convBn(x, planes, 1, 1, `${p}_conv1`, `${p}_bn1`), `${p}_relu1`);
  y = b.dropout(
    b.relu(b.convBn(y, planes, 3, stride, `${p}_conv2`, `${p}_bn2`), `${p}_relu2`),
    `${p}_drop`,
  );
  y = b.convBn(y, outC, 1, 1, `${p}_conv3`, `${p}_bn3`);
  const shortcut =
    stride !== 1 || inC !== outC ? b.convBn(x, outC, 1, stride, `${p}_proj`, `${p}_proj_bn`) : x;
  return [b.relu(b.add(y, shortcut, `${p}_add`), `${p}_out`), outC];
}

/** Pre-activation block: BN–ReLU–conv–BN–ReLU–conv; the projection reads the pre-activated input. */
function preactBlock(
  b: Builder,
  x: SymbolicTensor,
  inC: number,
  outC: number,
  stride: number,
  p: string,
): [SymbolicTensor, number] {
  const pre = b.relu(b.bn(x, `${p}_bn1`), `${p}_relu1`);
  const shortcut = stride !== 1 || inC !== outC ? b.conv(pre, outC, 1, stride, `${p}_proj`) : x;
  const y = b.convBn(pre, outC, 3, stride, `${p}_conv1`, `${p}_bn2`);
  const out = b.conv(b.dropout(b.relu(y, `${p}_relu2`), `${p}_drop`), outC, 3, 1, `${p}_conv2`);
  return [b.add(out, shortcut, `${p}_add`), outC];
}

/** Builds a ResNet as a tf.LayersModel that maps [0,1] pixels to logits. */
export function buildResNet(spec: ResNetSpec, opts: BuildOptions): tf.LayersModel {
  const channels = opts.inputShape[2];
  if (opts.mean.length !== channels || opts.std.length !== channels) {
    throw new Error(`mean/std need ${channels} values, one per input channel`);
  }
  const b = new Builder(
    opts.seed ?? 0,
    opts.blockDropout ?? 0,
    opts.foldBatchNorm ?? false,
    opts.zeroWeights ?? false,
  );
  const input = tf.input({ shape: opts.inputShape, name: 'pixels' });
  // Rescaling broadcasts per-channel arrays: (x − mean) / std = x · (1/std) + (−mean/std).
  let x = tf.layers
    .rescaling({
      scale: opts.std.map((s) => 1 / s) as unknown as number,
      offset: opts.mean.map((m, i) => -m / opts.std[i]) as unknown as number,
      name: 'normalize',
    })
    .apply(input) as SymbolicTensor;

  // PreAct: the stem conv feeds both the first BN and the first shortcut, so it stays unfolded.
  x =
    spec.block === 'preact'
      ? b.conv(x, spec.width, 3, 1, 'stem_conv')
      : b.relu(b.convBn(x, spec.width, 3, 1, 'stem_conv', 'stem_bn'), 'stem_relu');

  let c = spec.width;
  spec.stages.forEach((blocks, s) => {
    const stageWidth = spec.width * 2 ** s;
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const prefix = `s${s + 1}_b${i + 1}`;
      const block =
        spec.block === 'basic'
          ? basicBlock
          : spec.block === 'bottleneck'
            ? bottleneck
            : preactBlock;
      [x, c] = block(b, x, c, stageWidth, stride, prefix);
    }
  });
  if (spec.block === 'preact') x = b.relu(b.bn(x, 'final_bn'), 'final_relu');
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as SymbolicTensor;
  // masks seeded per train step (models/seeded-dropout.ts): a stock seeded layer repeats its mask
  if (opts.dropout && opts.dropout > 0)
    x = seededDropout({ rate: opts.dropout, name: 'dropout' }).apply(x) as SymbolicTensor;
  const logits = b.dense(x, opts.numClasses, 'logits');
  const model = tf.model({ inputs: input, outputs: logits, name: opts.name ?? 'resnet' });
  if (opts.foldBatchNorm) foldedPairs.set(model, b.folded);
  return model;
}

/** For models built with foldBatchNorm: which (conv, BN) pairs of the full model each conv stands for. */
export const foldedPairs = new WeakMap<tf.LayersModel, [string, string][]>();
