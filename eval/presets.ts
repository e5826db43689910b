/**
 * Named evaluation protocols. AutoAttack (Croce & Hein 2020) is the one the field reports and
 * RobustBench ranks by: its attacks run as a cascade, each on the examples still robust after the
 * ones before, with the reference implementation's settings (which are the attacks' defaults here).
 */
import { check } from '../util/errors.js';

export interface Preset {
  attacks: string[];
  cascade: boolean;
  description: string;
}

const STANDARD: Preset = {
  attacks: ['apgd-ce', 'apgd-t', 'fab-t', 'square'],
  cascade: true,
  description: "AutoAttack's standard version: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries), 100 iterations each",
};

export const PRESETS: Record<string, Preset> = {
  autoattack: STANDARD,
  'autoattack:standard': STANDARD,
  'autoattack:plus': {
    attacks: ['apgd-ce:restarts=5', 'apgd-dlr:restarts=5', 'fab:restarts=5', 'square', 'apgd-t', 'fab-t'],
    cascade: true,
    description: "AutoAttack's plus version: APGD-CE and APGD-DLR with 5 restarts, FAB with 5 restarts, Square, APGD-T, FAB-T",
  },
  'autoattack:rand': {
    attacks: ['apgd-ce:eot=20', 'apgd-dlr:eot=20'],
    cascade: true,
    description: "AutoAttack's version for randomized defenses: APGD-CE and APGD-DLR, gradients averaged over 20 draws (EOT)",
  },
};

export function preset(name: string): Preset {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  check(p, `unknown preset '${name}' (one of: ${Object.keys(PRESETS).join(', ')})`);
  return p;
}
