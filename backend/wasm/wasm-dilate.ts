/** Stride dilation of an output gradient, shared by the conv and depthwise input gradients. */
import type * as tf from '@tensorflow/tfjs';
import type { KernelRunner } from './wasm-kernel-runner.js';

/**
 * `dy` [N,Ho,Wo,C] with s − 1 zero rows/columns inserted after each one, as a stride-1 layout
 * [N,Ho·sh,Wo·sw,C] of the strided conv's output (unchanged at stride 1), and its height and width.
 */
export function dilateByStride(
  k: KernelRunner,
  dy: tf.TensorInfo,
  [n, outH, outW, c]: [number, number, number, number],
  [sh, sw]: [number, number],
): { grad: tf.TensorInfo; h: number; w: number } {
  if (sh === 1 && sw === 1) return { grad: dy, h: outH, w: outW };
  // [N,Ho,Wo,C] → [N,Ho,1,Wo,1,C] → pad to [N,Ho,sh,Wo,sw,C] → [N,Ho·sh,Wo·sw,C].
  const r = k.run('Reshape', { x: dy }, { shape: [n, outH, 1, outW, 1, c] });
  const paddings = [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ];
  const p = k.run('PadV2', { x: r }, { paddings, constantValue: 0 });
  const h = outH * sh;
  const w = outW * sw;
  return { grad: k.run('Reshape', { x: p }, { shape: [n, h, w, c] }), h, w };
}
