/**
 * Conv2D's and DepthwiseConv2dNative's gradients, dilated (atrous) convolutions included.
 *
 * tfjs-core refuses the gradient of a dilated conv or depthwise conv (DeepLab-style atrous layers
 * in graph models), and the cpu backend's depthwise gradient kernels ignore dilation. Ours give dx
 * and dW lazily, each only when asked (an attack asks for dx alone), as tfjs-core's do:
 *  - undilated, or a depthwise conv on wasm (our kernels take the dilation): the backend's
 *    gradient kernels, as tfjs-core calls them;
 *  - dilated otherwise: the same conv with the filter's zeros written out (a (k−1)·d + 1 filter,
 *    dilation 1), whose dW at every d-th tap is the dilated filter's.
 * Registered for every backend; tests compare them with the cpu backend on undilated convs and
 * with the written-out filter on dilated ones.
 */
import tf from '#tfjs';
import { wasmDepthwiseGradientKernels } from '../wasm/wasm-depthwise.js';

export interface ConvAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NHWC' | 'NCHW';
}

const pair = (v: number | [number, number] | null | undefined): [number, number] =>
  v == null ? [1, 1] : typeof v === 'number' ? [v, v] : v;

/** The filter with d − 1 zeros between taps: [(kh−1)·dh + 1, (kw−1)·dw + 1, C, M]. */
function writeOutDilation(filter: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  const [kh, kw, c, m] = filter.shape;
  const spread = tf.pad(filter.reshape([kh, 1, kw, 1, c, m]), [
    [0, 0],
    [0, dh - 1],
    [0, 0],
    [0, dw - 1],
    [0, 0],
    [0, 0],
  ]);
  return tf.slice(
    spread.reshape([kh * dh, kw * dw, c, m]) as tf.Tensor4D,
    [0, 0, 0, 0],
    [(kh - 1) * dh + 1, (kw - 1) * dw + 1, c, m],
  );
}

/** Whether the current backend's gradient kernels take a dilation (ours on wasm do). */
function kernelsTakeDilation(): boolean {
  const kernel = tf.getKernel('DepthwiseConv2dNativeBackpropInput', tf.getBackend());
  return wasmDepthwiseGradientKernels.some((k) => k.kernelFunc === kernel?.kernelFunc);
}

const depthwiseGrad: tf.GradConfig = {
  kernelName: 'DepthwiseConv2dNative',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const g = dy as tf.Tensor4D;
    const a = attrs as unknown as ConvAttrs;
    const dilations = pair(a.dilations);
    const common = { strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode };
    const dilated = dilations.some((d) => d > 1);
    if (!dilated || kernelsTakeDilation()) {
      const attrsOf = (shape: Record<string, number[]>) =>
        ({ ...common, dilations, ...shape }) as unknown as tf.NamedAttrMap;
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              'DepthwiseConv2dNativeBackpropInput',
              { dy: g, filter },
              attrsOf({ inputShape: x.shape }),
            ) as tf.Tensor,
        filter: () =>
          tf
            .engine()
            .runKernel(
              'DepthwiseConv2dNativeBackpropFilter',
              { x, dy: g },
              attrsOf({ filterShape: filter.shape }),
            ) as tf.Tensor,
      };
    }
    const undilated = { ...common, dilations: [1, 1] };
    return {
      x: () => {
        const wide = writeOutDilation(filter, dilations);
        return tf
          .engine()
          .runKernel('DepthwiseConv2dNativeBackpropInput', { dy: g, filter: wide }, {
            ...undilated,
            inputShape: x.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor;
      },
      filter: () => {
        const [kh, kw, c, m] = filter.shape;
        const wideShape = [(kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1, c, m];
        const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: g }, {
          ...undilated,
          filterShape: wideShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
        return tf.stridedSlice(dw, [0, 0, 0, 0], dw.shape, [dilations[0], dilations[1], 1, 1]);
      },
    };
  },
};

const conv2dGrad: tf.GradConfig = {
  kernelName: 'Conv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const g = dy as tf.Tensor4D;
    const a = attrs as unknown as ConvAttrs;
    const dilations = pair(a.dilations);
    const common = {
      strides: a.strides,
      pad: a.pad,
      dataFormat: a.dataFormat ?? 'NHWC',
      dimRoundingMode: a.dimRoundingMode,
    };
    const run = (kernel: string, inputs: tf.NamedTensorMap, shape: Record<string, number[]>) =>
      tf.engine().runKernel(kernel, inputs, {
        ...common,
        ...shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    if (dilations.every((d) => d === 1)) {
      return {
        x: () => run('Conv2DBackpropInput', { dy: g, filter }, { inputShape: x.shape }),
        filter: () => run('Conv2DBackpropFilter', { x, dy: g }, { filterShape: filter.shape }),
      };
    }
    const [kh, kw, cin, cout] = filter.shape;
    const wideShape = [(kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1, cin, cout];
    return {
      x: () =>
        run(
          'Conv2DBackpropInput',
          { dy: g, filter: writeOutDilation(filter, dilations) },
          { inputShape: x.shape },
        ),
      filter: () =>
        tf.stridedSlice(
          run('Conv2DBackpropFilter', { x, dy: g }, { filterShape: wideShape }),
          [0, 0, 0, 0],
          wideShape,
          [dilations[0], dilations[1], 1, 1],
        ),
    };
  },
};

/** Registers the conv and depthwise conv gradients for every backend (idempotent). */
export function registerConvGradients(): void {
  tf.registerGradient(depthwiseGrad);
  tf.registerGradient(conv2dGrad);
}
