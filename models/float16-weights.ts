/**
 * A TF.js model with its float32 weights stored as float16: TF.js's own weight quantization
 * (`"quantization": {"dtype": "float16"}` on each manifest entry), which tfjs decodes back to
 * float32 when it loads the model, so every loader reads it as before. Half the bytes, at a cost
 * to measure: each weight is rounded to the nearest float16 (11 significant bits), so the caller
 * checks accuracy before shipping one (scripts/zoo-add.ts --float16).
 */
import { Float16Array } from '@petamoriken/float16';
import { RobustError } from '../util/errors.js';
import type { ModelFiles } from './model-bytes.js';

/** Bytes per element of the dtypes a manifest entry may hold unquantized. */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** Largest finite float16. */
const FLOAT16_MAX = 65504;

/**
 * model.json and one weights file (`weightsFile`) for `files`' model with every float32 weight
 * as float16; int32 and bool weights are kept as they are. Refuses weights already quantized
 * and finite values beyond float16's range (±65504), which would become infinities.
 */
export function float16Model(
  files: ModelFiles,
  weightsFile = 'weights.bin',
): { json: ModelFiles['json']; weights: Uint8Array } {
  const source = new Uint8Array(files.weightData);
  const parts: Uint8Array[] = [];
  const specs = [];
  let at = 0;
  for (const spec of files.specs) {
    if (spec.quantization)
      throw new RobustError(
        `${files.jsonPath}: weight ${spec.name} is already quantized (${spec.quantization.dtype})`,
      );
    const dtype = spec.dtype ?? 'float32';
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = source.slice(at, at + count * BYTES[dtype]);
    at += bytes.length;
    if (dtype !== 'float32') {
      parts.push(bytes);
      specs.push(spec);
      continue;
    }
    const values = new Float32Array(bytes.buffer);
    const beyond = values.findIndex((v) => Math.abs(v) > FLOAT16_MAX && Number.isFinite(v));
    if (beyond >= 0)
      throw new RobustError(
        `${files.jsonPath}: weight ${spec.name} holds ${values[beyond]}, beyond float16's range (±${FLOAT16_MAX}): keep float32`,
      );
    parts.push(new Uint8Array(new Float16Array(values).buffer));
    specs.push({ ...spec, quantization: { dtype: 'float16' as const } });
  }
  const weights = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let out = 0;
  for (const p of parts) {
    weights.set(p, out);
    out += p.length;
  }
  return {
    json: { ...files.json, weightsManifest: [{ paths: [weightsFile], weights: specs }] },
    weights,
  };
}
