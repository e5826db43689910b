/**
 * The metadata robust writes into a checkpoint (`userDefinedMetadata.robust`): what it is, what it
 * was trained on and with which defense. Read from a file, so checked field by field before use:
 * a width that is a string or a noise draw count of 1e9 is one line, not a crash or a hang.
 */
import type * as tf from '@tensorflow/tfjs';
import type { DefenseConfig } from '../defenses/defense.js';
import { checkFields, rule } from '../util/fields.js';
import { LIMITS } from '../util/limits.js';

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
  checkFields(robust, {
    model: rule.string(true),
    width: rule.integer(1, LIMITS.width, true),
    data: rule.string(true),
    defense: rule.string(true),
    classes: rule.strings(true),
    defenseConfig: rule.object(true),
  }, at);
  const d = (robust as ModelMeta).defenseConfig;
  if (d) {
    checkFields(d, {
      names: rule.strings(true),
      eps: rule.number(0, 1e6, true),
      noiseStd: rule.number(0, 1e6, true),
      noiseSamples: rule.integer(1, LIMITS.samples, true),
    }, `${at}.defenseConfig`);
  }
  return robust as ModelMeta;
}
