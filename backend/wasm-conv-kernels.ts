/**
 * Convolutions on tfjs's wasm heap with our SIMD kernels (backend/kernels/): the forward conv, its
 * input gradient and its filter gradient. Each returns null where the kernels cannot run (then the
 * caller takes tfjs's XNNPACK path) and a new output tensor otherwise.
 *
 * Why not XNNPACK for these: a CIFAR ResNet's convs are small (16–64 channels), and XNNPACK's
 * per-call set-up (operator creation, indirection buffers, weight packing — redone whenever the
 * filter is a new tensor, i.e. every training step and every input-gradient call) costs about as
 * much as the arithmetic; as a filter gradient, XNNPACK even repacks the activations.
 */
import * as tf from '@tensorflow/tfjs';
import { type ConvShape, type WasmHeapBackend, heapOffset, runConvKernel, threadsFor, wasmKernelPool } from './wasm-kernels.js';
import type { WasmKernelPool } from './wasm-kernel-pool.js';

type Info = tf.TensorInfo;

const float32 = (...ts: Info[]) => ts.every((t) => t.dtype === 'float32');

/** Runs `body` with a heap buffer of `floats` zeros (border tiles read it in place of padding). */
function withZeros<T>(backend: WasmHeapBackend, kernels: WasmKernelPool, floats: number, body: (at: number) => T): T {
  const zeros = backend.makeOutput([floats], 'float32');
  try {
    const at = heapOffset(backend, zeros);
    kernels.run('zero', [[at, floats]]);
    return body(at);
  } finally {
    backend.disposeData(zeros.dataId);
  }
}
const macs = (s: ConvShape) => s.batch * s.outH * s.outW * s.kh * s.kw * s.inC * s.outC;

/** y = conv(x, filter), [N, Ho, Wo, Cout]. */
export function conv2dWithKernel(backend: WasmHeapBackend, x: Info, filter: Info, s: ConvShape): Info | null {
  if (!float32(x, filter)) return null;
  const kernels = wasmKernelPool(backend);
  if (!kernels) return null;
  const rows = s.batch * s.outH;
  const taps = s.kh * s.kw * s.inC;
  const packed = backend.makeOutput([Math.max(1, taps * (s.outC & ~3))], 'float32');
  const out = backend.makeOutput([s.batch, s.outH, s.outW, s.outC], 'float32');
  const targets = new Array<number>(threadsFor(kernels, macs(s), rows)).fill(heapOffset(backend, out));
  try {
    const w = heapOffset(backend, filter);
    const p = heapOffset(backend, packed);
    kernels.run('pack_filter', [[p, w, taps, s.outC]]);
    withZeros(backend, kernels, s.inC, (zeros) => runConvKernel(kernels, 'conv2d', { targets, operands: [heapOffset(backend, x), w, p, zeros] }, s, rows));
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    backend.disposeData(packed.dataId);
  }
  return out;
}

/** dx, [N, H, W, Cin]. */
export function backpropInputWithKernel(backend: WasmHeapBackend, dy: Info, filter: Info, s: ConvShape): Info | null {
  if (!float32(dy, filter)) return null;
  const kernels = wasmKernelPool(backend);
  if (!kernels) return null;
  const rows = s.batch * s.inH;
  // Channels in 8-wide slices; the last slice 8 wide if more than 4 remain for it, else 4.
  const rest = s.inC % 8;
  const paddedC = s.inC - rest + (rest === 0 ? 0 : rest > 4 ? 8 : 4);
  const packed = backend.makeOutput([s.kh * s.kw * s.outC * paddedC], 'float32');
  const out = backend.makeOutput([s.batch, s.inH, s.inW, s.inC], 'float32');
  const targets = new Array<number>(threadsFor(kernels, macs(s), rows)).fill(heapOffset(backend, out));
  try {
    const w = heapOffset(backend, filter);
    const p = heapOffset(backend, packed);
    kernels.run('pack_filter_t', [[p, w, s.kh, s.kw, s.inC, s.outC]]);
    withZeros(backend, kernels, s.outC, (zeros) => runConvKernel(kernels, 'conv2d_backprop_input', { targets, operands: [heapOffset(backend, dy), p, zeros] }, s, rows));
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    backend.disposeData(packed.dataId);
  }
  return out;
}

/** dW, [kh, kw, Cin, Cout]: threads add up partial sums over their rows. */
export function filterGradWithKernel(backend: WasmHeapBackend, x: Info, dy: Info, s: ConvShape): Info | null {
  if (!float32(x, dy)) return null;
  const kernels = wasmKernelPool(backend);
  if (!kernels) return null;
  const size = s.kh * s.kw * s.inC * s.outC;
  const rows = s.batch * s.outH;
  const threads = threadsFor(kernels, macs(s), rows);
  const out = backend.makeOutput([s.kh, s.kw, s.inC, s.outC], 'float32');
  // Thread 0 writes the result, the others partial sums added in afterwards.
  const partials = Array.from({ length: threads - 1 }, () => backend.makeOutput([size], 'float32'));
  try {
    const targets = [out, ...partials].map((t) => heapOffset(backend, t));
    kernels.run('zero', targets.map((t) => [t, size])); // the kernel adds into them
    runConvKernel(kernels, 'conv2d_filter_grad', { targets, operands: [heapOffset(backend, x), heapOffset(backend, dy)] }, s, rows);
    for (const p of partials) kernels.run('add_into', [[targets[0], heapOffset(backend, p), size]]);
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    for (const p of partials) backend.disposeData(p.dataId);
  }
  return out;
}
