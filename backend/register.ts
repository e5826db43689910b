/** The kernels and gradients robust registers with tfjs: the same in Node and in a browser. */
import { registerWasmConvGradients } from './wasm/wasm-conv-grad.js';
import { registerWasmTranspose } from './wasm/wasm-transpose.js';
import { registerWasmIdentity } from './wasm/wasm-identity.js';
import { registerBatchNormGradient } from './ops/batchnorm-grad.js';
import { registerReluGradient, registerWasmRelu } from './wasm/relu.js';
import { registerWasmFusedBatchNorm } from './wasm/wasm-fused-batchnorm.js';
import { registerWasmSign } from './wasm/wasm-sign.js';
import { registerWasmLog1p } from './wasm/wasm-log1p.js';
import { registerWasmDepthwise } from './wasm/wasm-depthwise.js';
import { registerConvGradients } from './ops/conv-gradients.js';
import { registerLazyConv2D } from '../models/lazy-conv.js';
import { registerFusedBatchNorm } from '../models/fused-batchnorm.js';
import { registerSeededDropout } from '../models/seeded-dropout.js';
import { registerGraphOps } from './ops/graph-ops.js';
import { registerAvgPoolGradient, registerWasmPoolGradients } from './ops/pool-grad.js';
import { registerActivationGradients, registerWasmActivations } from './wasm/activations.js';
import { registerWasmBroadcast } from './wasm/wasm-broadcast.js';
import { registerWasmSlice } from './wasm/wasm-slice.js';
import { registerWasmTile } from './wasm/wasm-tile.js';
import { registerMeanGradient } from './ops/mean-grad.js';

/** Gradients tfjs lacks or computes wastefully, and graph ops, for every backend. */
export function registerGradients(): void {
  // Loaded models' Conv2D and BatchNormalization layers become robust's (same function: lazy filter
  // gradients, fused training-mode BN). Done when a backend starts, not at import: importing robust changes nothing in tfjs.
  registerLazyConv2D();
  registerFusedBatchNorm();
  registerSeededDropout();
  registerBatchNormGradient();
  registerReluGradient();
  registerConvGradients();
  registerGraphOps();
  registerAvgPoolGradient();
  registerActivationGradients();
  registerMeanGradient();
}

/** Our wasm kernels (SIMD, on tfjs's heap) and the stock wasm kernels they fix or replace. */
export function registerWasmKernels(): void {
  registerWasmConvGradients();
  registerWasmTranspose();
  registerWasmIdentity();
  registerWasmRelu();
  registerWasmFusedBatchNorm();
  registerWasmSign();
  registerWasmLog1p();
  registerWasmDepthwise();
  registerWasmPoolGradients();
  registerWasmActivations();
  registerWasmBroadcast();
  registerWasmSlice();
  registerWasmTile();
}
