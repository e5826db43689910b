/** The compute variant: what it names on each setting, old results' reading, and the environment's values refused. */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { computeVariant, legacyCompute } from '../../backend/variant.js';
import {
  kernelsFma,
  useRelaxedSimd,
  useWasmKernels,
  useWinograd,
} from '../../backend/wasm/wasm-kernels.js';
import { relaxedMadd } from '../../backend/wasm/relaxed-simd.js';

describe('computeVariant on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: 1 });
  });
  afterEach(() => {
    useWasmKernels(true);
    useWinograd(true, 4);
    useRelaxedSimd(true);
  });

  it('names whose kernels run and the 3x3 conv algorithm, not the threads', () => {
    useRelaxedSimd(false);
    expect(computeVariant()).toBe('robust kernels, Winograd F(4x4,3x3)');
    useWinograd(true, 2);
    expect(computeVariant()).toBe('robust kernels, Winograd F(2x2,3x3)');
    useWinograd(false);
    expect(computeVariant()).toBe('robust kernels, direct convs');
    useWasmKernels(false);
    expect(computeVariant()).toBe('tfjs kernels (XNNPACK)');
  });

  it('names FMA where the relaxed-SIMD build runs: by default, where the engine fuses its multiply-add', () => {
    // Node 20 runs relaxed SIMD once its flag is set; x64 with FMA3 (and arm64) fuse
    useRelaxedSimd(true); // the default (ROBUST_RELAXED_SIMD unset or 1)
    const rounding = relaxedMadd();
    expect(rounding).not.toBeNull();
    const fma = rounding === 'fused' ? ', FMA' : '';
    expect(computeVariant()).toBe(`robust kernels, Winograd F(4x4,3x3)${fma}`);
    expect(kernelsFma()).toBe(fma !== '');
    useWinograd(true, 2);
    expect(computeVariant()).toBe(`robust kernels, Winograd F(2x2,3x3)${fma}`);
    useWinograd(false);
    expect(computeVariant()).toBe(`robust kernels, direct convs${fma}`);
    useRelaxedSimd(false);
    expect(computeVariant()).toBe('robust kernels, direct convs');
    expect(kernelsFma()).toBe(false);
    useRelaxedSimd(true);
    useWasmKernels(false);
    expect(computeVariant()).toBe('tfjs kernels (XNNPACK)');
    expect(kernelsFma()).toBe(false);
  });

  it('reads wasm results from before it was recorded as the F(2x2) kernels that computed them', () => {
    // that release's inference ran exactly today's ROBUST_WINOGRAD=2 kernels: its partials resume there
    useWinograd(true, 2);
    useRelaxedSimd(false); // and the plain SIMD build: that release had no other
    expect(legacyCompute('wasm')).toBe('robust kernels, Winograd F(2x2,3x3)');
    expect(computeVariant()).toBe(legacyCompute('wasm'));
    for (const [on, m] of [
      [true, 4],
      [false, 4],
    ] as const) {
      useWinograd(on, m);
      expect(computeVariant()).not.toBe(legacyCompute('wasm'));
    }
    expect(legacyCompute('cpu')).toBe('tfjs kernels, 1 thread'); // cpu has not changed
  });
});

describe('ROBUST_WINOGRAD and ROBUST_WASM_KERNELS', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  /** The kernel settings of a fresh import under `env`. */
  async function fresh(env: Record<string, string>) {
    vi.resetModules();
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    return import('../../backend/wasm/wasm-kernels.js');
  }

  it('take 4 (the default), 2, 0, or nothing; kernels 1 or 0', async () => {
    for (const [value, on, tile] of [
      ['4', true, 4],
      ['2', true, 2],
      ['0', false, 4],
      ['', true, 4],
    ] as const) {
      const k = await fresh({ ROBUST_WINOGRAD: value, ROBUST_WASM_KERNELS: '1' });
      expect(k.kernelEnvProblem()).toBeNull();
      expect([k.winogradEnabled(), k.winogradTile()]).toEqual([on, tile]);
    }
    expect((await fresh({ ROBUST_WASM_KERNELS: '0' })).kernelEnvProblem()).toBeNull();
    for (const value of ['1', '0', ''])
      expect((await fresh({ ROBUST_RELAXED_SIMD: value })).kernelEnvProblem()).toBeNull();
  });

  for (const [name, value] of [
    ['ROBUST_WINOGRAD', '3'],
    ['ROBUST_WINOGRAD', 'abc'],
    ['ROBUST_WINOGRAD', ' 2'],
    ['ROBUST_WASM_KERNELS', 'off'],
    ['ROBUST_RELAXED_SIMD', 'fma'],
    ['ROBUST_RELAXED_SIMD', '2'],
  ]) {
    it(`refuses ${name}=${JSON.stringify(value)} in one line, before any backend starts`, async () => {
      await fresh({ [name]: value });
      const { initBackend: init } = await import('../../backend/index.js');
      const e = await init({ backend: 'cpu' }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).name).toBe('RobustError'); // another module instance's class: by name
      expect((e as Error).message).toMatch(new RegExp(`^${name} must be .*; got '${value}'$`));
      expect((e as Error).message.split('\n')).toHaveLength(1);
    });
  }
});
