/**
 * BatchNorm in training mode (batch statistics) as one fused op with a hand-written gradient.
 *
 * tf.layers builds it from tf.moments and batchNormalization, and autodiff then differentiates
 * through the statistics op by op: on wasm that was ~30 kernels and a third of a ResNet-20 train
 * step (reductions over non-inner axes are naive loops there). Here the forward is one pass for
 * the statistics and one to normalise, the backward one pass for the two per-channel sums and one
 * for dx — plain loops over the channels-last data where JS can see it (wasm, cpu), tf ops elsewhere.
 *
 * With x̂ = (x − μ)/σ, y = γ·x̂ + β and M values per channel:
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/σ · (dy − dβ/M − x̂·dγ/M).
 */
import * as tf from '@tensorflow/tfjs';
import { hostMemory, type HostMemory } from './host-memory.js';

export interface BatchNormTrainResult {
  y: tf.Tensor;
  /** Per-channel batch mean and biased variance (what tf.layers feeds its moving averages). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** Per-channel mean and biased variance of channels-last data, one pass, shifted sums in float64. */
function channelMoments(x: Float32Array, channels: number): { mean: Float64Array; variance: Float64Array } {
  const rows = x.length / channels;
  const s1 = new Float64Array(channels);
  const s2 = new Float64Array(channels);
  // Shifting by the first row keeps the sums small, so Σd² − (Σd)²/M does not cancel badly.
  const shift = x.slice(0, channels);
  for (let o = 0; o < x.length; o += channels) {
    for (let c = 0; c < channels; c++) {
      const d = x[o + c] - shift[c];
      s1[c] += d;
      s2[c] += d * d;
    }
  }
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = s1[c] / rows;
    mean[c] = shift[c] + m;
    variance[c] = Math.max(s2[c] / rows - m * m, 0);
  }
  return { mean, variance };
}

/** Per-channel statistics of channels-last `x` as host arrays. */
function statsOnHost(mem: HostMemory, x: tf.Tensor, eps: number) {
  const { mean, variance } = channelMoments(mem.view(x), x.shape[x.rank - 1]);
  const invStd = variance.map((v) => 1 / Math.sqrt(v + eps));
  return { mean: Float32Array.from(mean), variance: Float32Array.from(variance), invStd: Float32Array.from(invStd) };
}

function normalizeOnHost(mem: HostMemory, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, mean: Float32Array, invStd: Float32Array): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  const y = mem.alloc(x.shape);
  const [xs, g, b, ys] = [mem.view(x), mem.view(gamma), mem.view(beta), mem.view(y)];
  const scale = new Float32Array(channels);
  const offset = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = g[c] * invStd[c];
    offset[c] = b[c] - mean[c] * scale[c];
  }
  for (let o = 0; o < xs.length; o += channels) {
    for (let c = 0; c < channels; c++) ys[o + c] = xs[o + c] * scale[c] + offset[c];
  }
  return y;
}

function backwardOnHost(mem: HostMemory, dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor, mean: Float32Array, invStd: Float32Array) {
  const channels = x.shape[x.rank - 1];
  const rows = x.size / channels;
  const dx = mem.alloc(x.shape);
  const dys = mem.view(dy);
  const xs = mem.view(x);
  const g = mem.view(gamma);
  const sumDy = new Float64Array(channels);
  const sumDyCentered = new Float64Array(channels);
  for (let o = 0; o < xs.length; o += channels) {
    for (let c = 0; c < channels; c++) {
      const d = dys[o + c];
      sumDy[c] += d;
      sumDyCentered[c] += d * (xs[o + c] - mean[c]);
    }
  }
  const dGamma = new Float32Array(channels);
  const dBeta = new Float32Array(channels);
  // dx = a·dy + b·x + k per channel, with a = γ/σ, b = −γ/σ · dγ/(M·σ), k = −a·dβ/M − b·μ.
  const a = new Float32Array(channels);
  const b = new Float32Array(channels);
  const k = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    dBeta[c] = sumDy[c];
    dGamma[c] = sumDyCentered[c] * invStd[c];
    a[c] = g[c] * invStd[c];
    b[c] = (-a[c] * dGamma[c] * invStd[c]) / rows;
    k[c] = (-a[c] * dBeta[c]) / rows - b[c] * mean[c];
  }
  const dxs = mem.view(dx);
  for (let o = 0; o < xs.length; o += channels) {
    for (let c = 0; c < channels; c++) dxs[o + c] = a[c] * dys[o + c] + b[c] * xs[o + c] + k[c];
  }
  return { dx, dGamma: tf.tensor1d(dGamma), dBeta: tf.tensor1d(dBeta) };
}

function backwardWithOps(dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor, mean: tf.Tensor, invStd: tf.Tensor) {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const rows = x.size / x.shape[x.rank - 1];
  const xHat = tf.mul(tf.sub(x, mean), invStd);
  const dBeta = tf.sum(dy, axes);
  const dGamma = tf.sum(tf.mul(dy, xHat), axes);
  const dx = tf.mul(tf.mul(gamma, invStd), tf.sub(tf.sub(dy, tf.div(dBeta, rows)), tf.mul(xHat, tf.div(dGamma, rows))));
  return { dx, dGamma, dBeta };
}

/**
 * Normalises channels-last `x` with its own batch statistics: y = γ·(x − μ)/√(σ² + eps) + β.
 * Differentiable in x, γ and β (the gradient includes the path through μ and σ²); the statistics
 * are returned for the moving averages and carry no gradient.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, opts: { hostLoops?: boolean } = {}): BatchNormTrainResult {
  const mem = x.dtype === 'float32' && opts.hostLoops !== false ? hostMemory() : null;
  if (mem) {
    const s = statsOnHost(mem, x, eps);
    const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
      (save as tf.GradSaveFunc)([xIn as tf.Tensor, gammaIn as tf.Tensor]);
      return {
        value: normalizeOnHost(mem, xIn as tf.Tensor, gammaIn as tf.Tensor, betaIn as tf.Tensor, s.mean, s.invStd),
        gradFunc: (dy: tf.Tensor, [xs, gs]: tf.Tensor[]) => {
          const r = backwardOnHost(hostMemory()!, dy, xs, gs, s.mean, s.invStd);
          return [r.dx, r.dGamma, r.dBeta];
        },
      };
    });
    return { y: op(x, gamma, beta) as tf.Tensor, mean: tf.tensor1d(s.mean), variance: tf.tensor1d(s.variance) };
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const invStd = tf.rsqrt(tf.add(variance, eps));
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, gammaIn as tf.Tensor, mean, invStd]);
    return {
      value: tf.add(tf.mul(tf.sub(xIn as tf.Tensor, mean), tf.mul(invStd, gammaIn as tf.Tensor)), betaIn as tf.Tensor),
      gradFunc: (dy: tf.Tensor, [xs, gs, m, inv]: tf.Tensor[]) => {
        const r = backwardWithOps(dy, xs, gs, m, inv);
        return [r.dx, r.dGamma, r.dBeta];
      },
    };
  });
  return { y: op(x, gamma, beta) as tf.Tensor, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
