/**
 * Named evaluation protocols. AutoAttack (Croce & Hein 2020) is the one the field reports and
 * RobustBench ranks by: its attacks run as a cascade, each on the examples still robust after the
 * ones before, with the reference implementation's settings (which are the attacks' defaults here).
 */
import type { NormName } from '../attacks/norms.js';
import { check } from '../util/errors.js';

export interface Preset {
  attacks: string[];
  /** The attacks for the L1 threat model, where the reference's settings differ; absent: L1 is refused. */
  l1Attacks?: string[];
  cascade: boolean;
  description: string;
}

const STANDARD: Preset = {
  attacks: ['apgd-ce', 'apgd-t', 'fab-t', 'square'],
  // the reference's L1 version: APGD-CE with 5 restarts and APGD-T with 5 targets, both on the
  // decreasing-eps schedule (L1-APGD's default here)
  l1Attacks: ['apgd-ce:restarts=5', 'apgd-t:targets=5', 'fab-t', 'square'],
  cascade: true,
  description:
    "AutoAttack's standard version: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries), 100 iterations each; for L1 APGD-CE with 5 restarts and APGD-T with 5 targets on the 3·eps, 2·eps, eps schedule",
};

export const PRESETS: Record<string, Preset> = {
  autoattack: STANDARD,
  'autoattack:standard': STANDARD,
  'autoattack:plus': {
    attacks: [
      'apgd-ce:restarts=5',
      'apgd-dlr:restarts=5',
      'fab:restarts=5',
      'square',
      'apgd-t',
      'fab-t',
    ],
    cascade: true,
    description:
      "AutoAttack's plus version: APGD-CE and APGD-DLR with 5 restarts, FAB with 5 restarts, Square, APGD-T, FAB-T",
  },
  'autoattack:rand': {
    attacks: ['apgd-ce:eot=20', 'apgd-dlr:eot=20'],
    cascade: true,
    description:
      "AutoAttack's version for randomized defenses: APGD-CE and APGD-DLR, gradients averaged over 20 draws (EOT)",
  },
};

/** The preset's attacks and protocol for a threat model. */
export function preset(name: string, norm: NormName = 'linf'): Preset {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  check(p, `unknown preset '${name}' (one of: ${Object.keys(PRESETS).join(', ')})`);
  if (norm !== 'l1') return p;
  // the reference's L1 settings (the decreasing-eps schedule, 5 restarts, 5 targets) are its standard version's only
  check(p.l1Attacks, `preset ${name} is defined for linf and l2 only (for l1: autoattack)`);
  return { ...p, attacks: p.l1Attacks };
}
