/**
 * BatchNorm in training mode (batch statistics) as one fused op with a hand-written gradient.
 *
 * tf.layers builds it from tf.moments and batchNormalization, and autodiff then differentiates
 * through the statistics op by op: on wasm that was ~30 kernels and a third of a ResNet-20 train
 * step (reductions over non-inner axes are naive loops there). Here the forward is one pass for
 * the statistics and one to normalise, the backward one pass for the two per-channel sums and one
 * for dx — our SIMD kernels on wasm (wasm-batchnorm.ts), plain JS loops over the channels-last
 * data on cpu, tf ops elsewhere.
 *
 * With x̂ = (x − μ)/σ, y = γ·x̂ + β and M values per channel:
 *   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/σ · (dy − dβ/M − x̂·dγ/M).
 */
import tf from '#tfjs';
import { hostMemory, type HostMemory } from '../wasm/host-memory.js';
import { type ChannelPasses, wasmChannelPasses } from '../wasm/wasm-batchnorm.js';

interface BatchNormTrainResult {
  y: tf.Tensor;
  /** Per-channel batch mean and biased variance (what tf.layers feeds its moving averages). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** The same statistics as arrays, where they were computed on the host (wasm, cpu). */
  hostStats?: { mean: Float32Array; variance: Float32Array };
}

/**
 * The loops below walk the data in chunks of ROWS rows; within a chunk, four channels at a time
 * with their running values in locals. Against one loop over every element with per-channel
 * arrays that is 2–3× faster in V8, and a chunk (ROWS × channels floats) stays in cache while
 * each block of four passes over it. Channels past the last multiple of four take a plain loop.
 */
const ROWS = 256;

/** Per channel: Σ (u − uShift) and Σ (u − uShift)·(w − wShift), in float64. */
function channelSums(
  channels: number,
  u: Float32Array,
  uShift: ArrayLike<number>,
  w: Float32Array,
  wShift: ArrayLike<number>,
) {
  const s1 = new Float64Array(channels);
  const s2 = new Float64Array(channels);
  const rows = u.length / channels;
  const blocked = channels - (channels % 4);
  for (let r0 = 0; r0 < rows; r0 += ROWS) {
    const end = Math.min(rows, r0 + ROWS) * channels;
    for (let c = 0; c < blocked; c += 4) {
      const [p0, p1, p2, p3] = [uShift[c], uShift[c + 1], uShift[c + 2], uShift[c + 3]];
      const [q0, q1, q2, q3] = [wShift[c], wShift[c + 1], wShift[c + 2], wShift[c + 3]];
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0,
        b0 = 0,
        b1 = 0,
        b2 = 0,
        b3 = 0;
      for (let o = r0 * channels + c; o < end; o += channels) {
        const d0 = u[o] - p0,
          d1 = u[o + 1] - p1,
          d2 = u[o + 2] - p2,
          d3 = u[o + 3] - p3;
        a0 += d0;
        a1 += d1;
        a2 += d2;
        a3 += d3;
        b0 += d0 * (w[o] - q0);
        b1 += d1 * (w[o + 1] - q1);
        b2 += d2 * (w[o + 2] - q2);
        b3 += d3 * (w[o + 3] - q3);
      }
      s1[c] += a0;
      s1[c + 1] += a1;
      s1[c + 2] += a2;
      s1[c + 3] += a3;
      s2[c] += b0;
      s2[c + 1] += b1;
      s2[c + 2] += b2;
      s2[c + 3] += b3;
    }
    for (let c = blocked; c < channels; c++) {
      for (let o = r0 * channels + c; o < end; o += channels) {
        const d = u[o] - uShift[c];
        s1[c] += d;
        s2[c] += d * (w[o] - wShift[c]);
      }
    }
  }
  return { s1, s2 };
}

/** out = a·u + k per channel, plus b·v when v is given. */
function channelAffine(
  channels: number,
  out: Float32Array,
  u: Float32Array,
  a: Float32Array,
  k: Float32Array,
  v?: Float32Array,
  b?: Float32Array,
): void {
  const rows = u.length / channels;
  const blocked = channels - (channels % 4);
  const vs = v ?? u;
  const bs = b ?? new Float32Array(channels); // b = 0 when there is no v term
  for (let r0 = 0; r0 < rows; r0 += ROWS) {
    const end = Math.min(rows, r0 + ROWS) * channels;
    for (let c = 0; c < blocked; c += 4) {
      const [a0, a1, a2, a3] = [a[c], a[c + 1], a[c + 2], a[c + 3]];
      const [b0, b1, b2, b3] = [bs[c], bs[c + 1], bs[c + 2], bs[c + 3]];
      const [k0, k1, k2, k3] = [k[c], k[c + 1], k[c + 2], k[c + 3]];
      for (let o = r0 * channels + c; o < end; o += channels) {
        out[o] = a0 * u[o] + b0 * vs[o] + k0;
        out[o + 1] = a1 * u[o + 1] + b1 * vs[o + 1] + k1;
        out[o + 2] = a2 * u[o + 2] + b2 * vs[o + 2] + k2;
        out[o + 3] = a3 * u[o + 3] + b3 * vs[o + 3] + k3;
      }
    }
    for (let c = blocked; c < channels; c++) {
      for (let o = r0 * channels + c; o < end; o += channels)
        out[o] = a[c] * u[o] + bs[c] * vs[o] + k[c];
    }
  }
}

/** The two passes as the JS loops above, on data JS can see. */
function hostPasses(mem: HostMemory): ChannelPasses {
  return {
    sums: (channels, u, uShift, w, wShift) =>
      channelSums(channels, mem.view(u), uShift, mem.view(w), wShift),
    affine: (channels, out, u, a, k, v, b) =>
      channelAffine(channels, mem.view(out), mem.view(u), a, k, v && mem.view(v), b),
  };
}

/** Per-channel mean and biased variance of channels-last `x`, with its inverse standard deviation. */
function statsOnHost(mem: HostMemory, passes: ChannelPasses, x: tf.Tensor, eps: number) {
  const channels = x.shape[x.rank - 1];
  const rows = x.size / channels;
  // Sums shifted by the first row stay small, so Σd² − (Σd)²/M does not cancel badly.
  const shift = mem.view(x).slice(0, channels);
  const { s1, s2 } = passes.sums(channels, x, shift, x, shift);
  const mean = new Float32Array(channels);
  const variance = new Float32Array(channels);
  const invStd = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = s1[c] / rows;
    mean[c] = shift[c] + m;
    variance[c] = Math.max(s2[c] / rows - m * m, 0);
    invStd[c] = 1 / Math.sqrt(variance[c] + eps);
  }
  return { mean, variance, invStd };
}

function normalizeOnHost(
  mem: HostMemory,
  passes: ChannelPasses,
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  mean: Float32Array,
  invStd: Float32Array,
): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  const y = mem.alloc(x.shape);
  const g = mem.view(gamma).slice();
  const b = mem.view(beta).slice();
  const scale = new Float32Array(channels);
  const offset = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = g[c] * invStd[c];
    offset[c] = b[c] - mean[c] * scale[c];
  }
  passes.affine(channels, y, x, scale, offset);
  return y;
}

function backwardOnHost(
  mem: HostMemory,
  passes: ChannelPasses,
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor,
  mean: Float32Array,
  invStd: Float32Array,
) {
  const channels = x.shape[x.rank - 1];
  const rows = x.size / channels;
  const dx = mem.alloc(x.shape);
  const g = mem.view(gamma).slice();
  const { s1: sumDy, s2: sumDyCentered } = passes.sums(
    channels,
    dy,
    new Float32Array(channels),
    x,
    mean,
  );
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
  passes.affine(channels, dx, dy, a, k, x, b);
  return { dx, dGamma: tf.tensor1d(dGamma), dBeta: tf.tensor1d(dBeta) };
}

function backwardWithOps(
  dy: tf.Tensor,
  x: tf.Tensor,
  gamma: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
) {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const rows = x.size / x.shape[x.rank - 1];
  const xHat = tf.mul(tf.sub(x, mean), invStd);
  const dBeta = tf.sum(dy, axes);
  const dGamma = tf.sum(tf.mul(dy, xHat), axes);
  const dx = tf.mul(
    tf.mul(gamma, invStd),
    tf.sub(tf.sub(dy, tf.div(dBeta, rows)), tf.mul(xHat, tf.div(dGamma, rows))),
  );
  return { dx, dGamma, dBeta };
}

/**
 * Normalises channels-last `x` with its own batch statistics: y = γ·(x − μ)/√(σ² + eps) + β.
 * Differentiable in x, γ and β (the gradient includes the path through μ and σ²); the statistics
 * are returned for the moving averages and carry no gradient.
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps: number,
  opts: { hostLoops?: boolean; jsLoops?: boolean } = {},
): BatchNormTrainResult {
  const mem = x.dtype === 'float32' && opts.hostLoops !== false ? hostMemory() : null;
  if (mem) {
    // On wasm our SIMD kernels, unless they cannot run (or jsLoops asks for the JS loops, for tests).
    const passes = (!opts.jsLoops && wasmChannelPasses()) || hostPasses(mem);
    const s = statsOnHost(mem, passes, x, eps);
    const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
      (save as tf.GradSaveFunc)([xIn as tf.Tensor, gammaIn as tf.Tensor]);
      return {
        value: normalizeOnHost(
          mem,
          passes,
          xIn as tf.Tensor,
          gammaIn as tf.Tensor,
          betaIn as tf.Tensor,
          s.mean,
          s.invStd,
        ),
        gradFunc: (dy: tf.Tensor, [xs, gs]: tf.Tensor[]) => {
          const r = backwardOnHost(hostMemory()!, passes, dy, xs, gs, s.mean, s.invStd);
          return [r.dx, r.dGamma, r.dBeta];
        },
      };
    });
    return {
      y: op(x, gamma, beta) as tf.Tensor,
      mean: tf.tensor1d(s.mean),
      variance: tf.tensor1d(s.variance),
      hostStats: { mean: s.mean, variance: s.variance },
    };
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const invStd = tf.rsqrt(tf.add(variance, eps));
  const op = tf.customGrad((xIn, gammaIn, betaIn, save) => {
    (save as tf.GradSaveFunc)([xIn as tf.Tensor, gammaIn as tf.Tensor, mean, invStd]);
    return {
      value: tf.add(
        tf.mul(tf.sub(xIn as tf.Tensor, mean), tf.mul(invStd, gammaIn as tf.Tensor)),
        betaIn as tf.Tensor,
      ),
      gradFunc: (dy: tf.Tensor, [xs, gs, m, inv]: tf.Tensor[]) => {
        const r = backwardWithOps(dy, xs, gs, m, inv);
        return [r.dx, r.dGamma, r.dBeta];
      },
    };
  });
  return {
    y: op(x, gamma, beta) as tf.Tensor,
    mean: mean as tf.Tensor1D,
    variance: variance as tf.Tensor1D,
  };
}
