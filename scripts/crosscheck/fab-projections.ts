/**
 * Writes random FAB projection problems and our solutions as JSON, for fab_projections_reference.py
 * to compare with the reference implementation's (fra31/auto-attack's fab_projections.py).
 * usage: node dist/scripts/crosscheck/fab-projections.js OUT.json [CASES]
 */
import fs from 'node:fs';
import { projectOntoHalfspace } from '../../attacks/fab-projections.js';
import { Rng } from '../../util/rng.js';

const [out, count = '60'] = process.argv.slice(2);
if (!out) {
  console.error('usage: fab-projections OUT.json [CASES]');
  process.exit(2);
}
const rng = new Rng(1);
const cases = Array.from({ length: Number(count) }, (_, k) => {
  const d = 5 + rng.int(40);
  const t = Float32Array.from({ length: d }, () => rng.next());
  const w = Float32Array.from({ length: d }, () => rng.next() * 2 - 1);
  const wt = t.reduce((s, v, i) => s + v * w[i], 0);
  const b = wt + (rng.next() * 2 - 1) * (k % 3 === 0 ? 10 : 1); // every third plane is out of the box's reach
  const solutions = Object.fromEntries(
    (['linf', 'l2', 'l1'] as const).map((norm) => {
      const o = new Float32Array(d);
      projectOntoHalfspace(norm, t, w, b, o);
      return [norm, Array.from(o)];
    }),
  );
  return { t: Array.from(t), w: Array.from(w), b, solutions };
});
fs.writeFileSync(out, JSON.stringify(cases));
