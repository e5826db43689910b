/**
 * C kernels compiled to wasm on the spot, for the benches that time two trees' kernels side by side
 * (bench:phases, bench:direct); the shipped kernels are built by scripts/build-kernels.sh.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RobustError } from '../util/errors.js';

export type WasmFn = (...args: number[]) => number;

/** $CLANG, or the newest clang on the PATH; a RobustError without one. */
export function findClang(): string {
  const found =
    process.env.CLANG ||
    ['clang-20', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang'].find((c) => {
      try {
        execFileSync(c, ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
  if (!found)
    throw new RobustError(
      'clang ≥ 16 and its wasm-ld are needed (apt-get install clang-16 lld-16)',
    );
  return found;
}

/**
 * `sources` built as build-kernels.sh builds the kernels — plain SIMD, or relaxed (MADD as one
 * relaxed_madd) — on the imported `memory`; its exports. `include`: a folder for #include.
 */
export function buildWasm(
  clang: string,
  sources: string[],
  o: { relaxed: boolean; memory: WebAssembly.Memory; include?: string; failure: string },
): Record<string, WasmFn> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'robust-wasm-build-'));
  const wasmFile = path.join(dir, 'k.wasm');
  try {
    execFileSync(clang, [
      '--target=wasm32',
      '-O3',
      '-msimd128',
      ...(o.relaxed ? ['-mrelaxed-simd', '-DROBUST_RELAXED_SIMD'] : []),
      '-ffreestanding',
      '-fno-builtin',
      '-nostdlib',
      ...(o.include ? ['-I', o.include] : []),
      '-Wl,--no-entry',
      '-Wl,--import-memory',
      '-Wl,--strip-all',
      '-o',
      wasmFile,
      ...sources,
    ]);
    return new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmFile)), {
      env: { memory: o.memory },
    }).exports as Record<string, WasmFn>;
  } catch {
    throw new RobustError(o.failure);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}
