/**
 * Test-only: the cpu backend's filter gradients as plain loops over typed arrays.
 *
 * tfjs-backend-cpu's Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropFilter read every tap
 * through TensorBuffer.get (about 1 µs per multiply-add: 30 s for one 16×16×16→48 3×3 layer at
 * batch 16), which made them most of the time of the tests that use the cpu backend as the
 * reference for our wasm kernels. These compute the same sums (each in float64, stored as float32,
 * as tfjs's loops do) in another order; test/backend/cpu-filter-gradients.test.ts checks them
 * against tfjs's own kernels. Installed only by the test files that compare wasm with cpu
 * (`useFastCpuFilterGradients`), and restored by the function it returns.
 */
import tf from '#tfjs';
import type { ConvAttrs } from '../backend/ops/conv-gradients.js';

type FilterGradAttrs = ConvAttrs & { filterShape: [number, number, number, number] };

type CpuBackend = { data: { get(id: object): { values: Float32Array } } };

function values(backend: unknown, t: tf.TensorInfo): Float32Array {
  return (backend as CpuBackend).data.get(t.dataId).values;
}

/**
 * dW[kh, kw, c, m] = Σ over n, output rows and columns of x[n, tap(kh), tap(kw), c] · dy[n, oh, ow,
 * c·mult + m] (depthwise) or dy[n, oh, ow, m] with c any input channel (`depthwise` false).
 */
function filterGradient(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: FilterGradAttrs,
  backend: unknown,
  depthwise: boolean,
): tf.TensorInfo {
  // what the callers need: robust's gradients write a dilated filter out before they get here
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') throw new Error('NHWC only');
  if (attrs.dilations != null && [attrs.dilations].flat().some((d) => d !== 1))
    throw new Error('no dilation (the stock cpu kernels ignore it)');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
  const [kh, kw, cin] = attrs.filterShape;
  const m = attrs.filterShape[3];
  const [n, h, w] = x.shape;
  const { outHeight, outWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const dyChannels = dy.shape[3];
  const xv = values(backend, x);
  const dyv = values(backend, dy);
  const sum = new Float64Array(kh * kw * cin * m);
  for (let b = 0; b < n; b++)
    for (let oh = 0; oh < outHeight; oh++)
      for (let ow = 0; ow < outWidth; ow++) {
        const dyAt = ((b * outHeight + oh) * outWidth + ow) * dyChannels;
        for (let i = 0; i < kh; i++) {
          const ih = oh * strideHeight - top + i;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < kw; j++) {
            const iw = ow * strideWidth - left + j;
            if (iw < 0 || iw >= w) continue;
            const xAt = ((b * h + ih) * w + iw) * cin;
            const wAt = (i * kw + j) * cin * m;
            for (let c = 0; c < cin; c++) {
              const xc = xv[xAt + c];
              const row = wAt + c * m;
              const dyRow = dyAt + (depthwise ? c * m : 0);
              for (let k = 0; k < m; k++) sum[row + k] += xc * dyv[dyRow + k];
            }
          }
        }
      }
  const out = Float32Array.from(sum);
  return (
    backend as { makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo }
  ).makeTensorInfo(attrs.filterShape, 'float32', out);
}

const KERNELS = [
  { name: 'Conv2DBackpropFilter', depthwise: false },
  { name: 'DepthwiseConv2dNativeBackpropFilter', depthwise: true },
];

/** Puts the loops above in place of the cpu backend's two filter-gradient kernels; returns the undo. */
export function useFastCpuFilterGradients(): () => void {
  const stock = KERNELS.map(({ name }) => tf.getKernel(name, 'cpu')!);
  KERNELS.forEach(({ name, depthwise }) => {
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel({
      kernelName: name,
      backendName: 'cpu',
      kernelFunc: ({ inputs, attrs, backend }) =>
        filterGradient(
          inputs.x as tf.TensorInfo,
          inputs.dy as tf.TensorInfo,
          attrs as unknown as FilterGradAttrs,
          backend,
          depthwise,
        ),
    });
  });
  return () =>
    KERNELS.forEach(({ name }, i) => {
      tf.unregisterKernel(name, 'cpu');
      tf.registerKernel(stock[i]);
    });
}
