/**
 * SGD with momentum and L2 weight decay, PyTorch semantics: g ← g + wd·w (kernels only, or every
 * weight as torch.optim.SGD(model.parameters()) decays them),
 * v ← μ·v + g, w ← w − lr·v, one pass per variable (backend/ops/sgd-momentum.ts). The momentum
 * buffers can be saved and restored for --resume.
 */
import tf from '#tfjs';
import { sgdMomentum } from '../backend/ops/sgd-momentum.js';

interface SgdConfig {
  momentum: number;
  weightDecay: number;
  /** The weights decayed: conv and dense kernels (default), or all (BN scales and offsets, biases too). */
  decay?: 'kernels' | 'all';
}

/** Weight decay applies to conv and dense kernels, not to BN scales/offsets or biases, unless all are decayed. */
const isKernel = (v: tf.LayerVariable | tf.Variable) => /kernel/.test(v.name);

export class Sgd {
  private readonly buffers: tf.Variable[];

  constructor(
    private readonly vars: tf.LayerVariable[],
    private readonly config: SgdConfig,
  ) {
    // tidy frees the zerosLike temporaries; variables survive it.
    this.buffers = tf.tidy(() => vars.map((v) => tf.variable(tf.zerosLike(v.read()), false)));
  }

  /** Applies one update with learning rate `lr`; `grads` are keyed by variable name. */
  step(grads: tf.NamedTensorMap, lr: number): void {
    const { momentum, weightDecay } = this.config;
    const decayAll = this.config.decay === 'all';
    tf.tidy(() => {
      this.vars.forEach((v, i) => {
        const w = v.read();
        const g = grads[(w as tf.Variable).name];
        if (!g) return;
        const buf = this.buffers[i];
        const decay = weightDecay > 0 && (decayAll || isKernel(v)) ? weightDecay : 0;
        const [wNew, bufNew] = sgdMomentum(w, g, buf, { lr, momentum, weightDecay: decay });
        buf.assign(bufNew);
        v.write(wNew);
      });
    });
  }

  /** Momentum buffers, in the order of the model's trainable weights. */
  state(): Float32Array[] {
    return this.buffers.map((b) => b.dataSync() as Float32Array);
  }

  setState(state: Float32Array[]): void {
    if (state.length !== this.buffers.length)
      throw new Error(
        `optimizer state has ${state.length} buffers, the model ${this.buffers.length}`,
      );
    tf.tidy(() => this.buffers.forEach((b, i) => b.assign(tf.tensor(state[i], b.shape))));
  }

  dispose(): void {
    this.buffers.forEach((b) => b.dispose());
  }
}
