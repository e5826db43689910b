/**
 * Whether this engine runs wasm relaxed SIMD and how its f32x4.relaxed_madd rounds, which decides
 * which build of our kernels runs (wasm-kernels.ts) and the compute variant (variant.ts): a fused
 * multiply-add rounds once, a multiply then an add twice, so the two give different last bits.
 *
 * Chrome ≥ 114 and Node ≥ 22 (V8 ≥ 11.4) run relaxed SIMD as shipped; Node 20 (V8 11.3) only with
 * --experimental-wasm-relaxed-simd, which is set here (util/platform.ts) the first time the probe
 * fails to validate, before any relaxed module compiles.
 */
import { enableWasmRelaxedSimd } from '../../util/platform.js';

// A module exporting madd(a, b, c: f32) -> f32 = lane 0 of f32x4.relaxed_madd(splat a, splat b, splat c).
// prettier-ignore
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7d, 0x7d, 0x7d, 0x01, 0x7d, // type: (f32, f32, f32) -> f32
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x07, 0x08, 0x01, 0x04, 0x6d, 0x61, 0x64, 0x64, 0x00, 0x00, // export "madd"
  0x0a, 0x16, 0x01, 0x14, 0x00, // code: one body of 20 bytes, no locals
  0x20, 0x00, 0xfd, 0x13, 0x20, 0x01, 0xfd, 0x13, 0x20, 0x02, 0xfd, 0x13, // local.get, f32x4.splat ×3
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd (0xfd 261, the standard's final opcode)
  0xfd, 0x1f, 0x00, 0x0b, // f32x4.extract_lane 0, end
]);

/** How f32x4.relaxed_madd runs here: one rounding, two, or not at all (null). */
export type MaddRounding = 'fused' | 'unfused' | null;

let probed: MaddRounding | undefined;

/**
 * Runs the probe once: a·b + c with a = 1 + 2⁻²³, b = 1 − 2⁻²³, c = −1 is −2⁻⁴⁶ fused and 0 when
 * a·b is first rounded to 1. Anything else (an engine that neither fuses nor rounds as float32
 * does) counts as no relaxed SIMD.
 */
export function relaxedMadd(): MaddRounding {
  if (probed !== undefined) return probed;
  probed = null;
  if (!WebAssembly.validate(PROBE) && !(enableWasmRelaxedSimd() && WebAssembly.validate(PROBE)))
    return probed;
  try {
    const { madd } = new WebAssembly.Instance(new WebAssembly.Module(PROBE)).exports as {
      madd: (a: number, b: number, c: number) => number;
    };
    const r = madd(1 + 2 ** -23, 1 - 2 ** -23, -1);
    probed = r === -(2 ** -46) ? 'fused' : Object.is(r, 0) ? 'unfused' : null;
  } catch {
    probed = null;
  }
  return probed;
}
