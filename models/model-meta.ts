/**
 * The metadata robust writes into a checkpoint (`userDefinedMetadata.robust`): what it is, what it
 * was trained on and with which defense. Read from a file, so checked field by field before use:
 * a width that is a string or a noise draw count of 1e9 is one line, not a crash or a hang.
 */
import type * as tf from '@tensorflow/tfjs';
import type { DefenseConfig } from '../defenses/defense.js';
import { checkFields, int, num, object, optional, str, strings } from '../util/fields.js';
import { LIMITS } from '../util/limits.js';
import { RobustError } from '../util/errors.js';
import { escapedControls } from '../util/format.js';

export interface ModelMeta {
  model?: string;
  width?: number;
  data?: string;
  defense?: string;
  classes?: string[];
  defenseConfig?: Partial<DefenseConfig>;
}

/** The robust metadata of a loaded model, checked; {} when it has none (a model robust did not make). */
export function modelMeta(model: tf.LayersModel, where: string): ModelMeta {
  const robust = (model.getUserDefinedMetadata() as { robust?: unknown } | undefined)?.robust;
  if (robust === undefined) return {};
  const at = `${where}: metadata robust`;
  checkFields(
    robust,
    {
      model: optional(str),
      width: optional(int(1, LIMITS.width)),
      data: optional(str),
      defense: optional(str),
      classes: optional(strings),
      defenseConfig: optional(object),
    },
    at,
  );
  // names with control characters are refused where data sets are read; a checkpoint's likewise,
  // and its other names too: they are printed in headers and tables
  const meta = robust as ModelMeta;
  for (const c of meta.classes ?? []) {
    const shown = escapedControls(c);
    if (shown !== undefined)
      throw new RobustError(`${at}.classes: class name "${shown}" holds a control character`);
  }
  for (const key of ['model', 'data', 'defense'] as const) {
    const shown = meta[key] === undefined ? undefined : escapedControls(meta[key]);
    if (shown !== undefined)
      throw new RobustError(`${at}.${key}: "${shown}" holds a control character`);
  }
  const d = meta.defenseConfig;
  if (d) {
    checkFields(
      d,
      {
        names: optional(strings),
        eps: optional(num(0, 1e6)),
        noiseStd: optional(num(0, 1e6)),
        noiseSamples: optional(int(1, LIMITS.samples)),
      },
      `${at}.defenseConfig`,
    );
  }
  return robust as ModelMeta;
}
