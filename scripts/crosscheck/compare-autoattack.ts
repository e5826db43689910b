/**
 * Puts a `robust eval --preset autoattack` run next to the reference cascade
 * (autoattack_reference.py --cascade … --out REF.json): per attack, the robust accuracy after it
 * on both sides over the same first N images, and how many images the two masks disagree on.
 *
 * usage: node dist/scripts/crosscheck/compare-autoattack.js --ours RESULTS_DIR --model zoo:NAME --ref REF.json [--n N]
 *
 * Our side is read from RESULTS_DIR/cells: finished cells and, for an attack still running, its
 * partial cell (only the images it has reached count then; the row says how many).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { optionsOrExit } from '../../cli/options.js';
import { check } from '../../util/errors.js';
import { readJsonFile } from '../../util/json-file.js';

interface RefFile {
  n: number;
  eps: number;
  clean: number[];
  after: Record<string, { robust: number[]; robust_acc: number; seconds: number }>;
}
interface Cell {
  model: string;
  attack: string;
  eps: number;
  robust: string;
  stats: { seconds: number };
}

const o = new Command()
  .requiredOption('--ours <dir>', 'the results folder of robust eval --preset autoattack')
  .requiredOption('--model <name>', 'the model as named in that run, e.g. zoo:resnet20-pgd')
  .requiredOption('--ref <file>', "the reference cascade's JSON")
  .option('--n <n>', 'compare over the first n images (default: all the reference has)')
  .parse()
  .opts<{ ours: string; model: string; ref: string; n?: string }>();

const cellsDir = path.join(o.ours, 'cells');
// A missing or damaged file is one line, never a stack trace.
const ref = optionsOrExit('compare-autoattack', () => {
  check(
    fs.existsSync(cellsDir),
    `${cellsDir}: not found (is ${o.ours} a robust eval results folder?)`,
  );
  return readJsonFile<RefFile>(
    o.ref,
    `${o.ref}: not found (the reference run writes it with --out)`,
  );
});
const n = o.n ? Number(o.n) : ref.n;
/** AutoAttack's standard cascade, in order. */
const CASCADE = ['apgd-ce', 'apgd-t', 'fab-t', 'square'];
const bits = (b64: string) => Uint8Array.from(Buffer.from(b64, 'base64'));

/** Our robust mask after each attack of the cascade, with the number of images it covers. */
const ours = new Map<string, { robust: Uint8Array; seconds: number }>();
const partials: { robust: Uint8Array; seconds: number }[] = [];
for (const f of fs.readdirSync(cellsDir)) {
  const j = optionsOrExit(
    'compare-autoattack',
    () => readJsonFile<Record<string, any>>(path.join(cellsDir, f), `${f}: vanished while read`), // eslint-disable-line @typescript-eslint/no-explicit-any -- a cell or a partial
  );
  if (f.endsWith('.partial.json'))
    partials.push({ robust: bits(j.state.robust), seconds: j.state.seconds });
  else if ((j as Cell).model === o.model && Math.abs(j.eps - ref.eps) < 1e-9)
    ours.set(j.attack, { robust: bits(j.robust), seconds: j.stats.seconds });
}
// A partial cell does not name its model or attack; the one still running is the first missing attack.
const order = Object.keys(ref.after);
const missing = CASCADE.find((a) => !ours.has(a));
if (missing && partials.length === 1) ours.set(`${missing} (partial)`, partials[0]);

const pct = (k: number, of: number) => `${((100 * k) / of).toFixed(2)}%`;
console.log(`| after | images | robust (ours) | reference | disagree |`);
console.log(`|---|---|---|---|---|`);
const clean = ref.clean.slice(0, n).reduce((a, v) => a + v, 0);
console.log(`| clean | ${n} | | ${pct(clean, n)} | |`);
// in the cascade's order, whatever order the cell files were listed in
const rank = (attack: string) => CASCADE.indexOf(attack.replace(' (partial)', ''));
for (const [attack, mine] of [...ours].sort(([a], [b]) => rank(a) - rank(b))) {
  const name = attack.replace(' (partial)', '');
  const theirs = ref.after[name]?.robust;
  const m = Math.min(n, mine.robust.length, theirs?.length ?? n);
  let a = 0,
    b = 0,
    d = 0;
  for (let i = 0; i < m; i++) {
    a += mine.robust[i];
    b += theirs?.[i] ?? 0;
    d += theirs && mine.robust[i] !== theirs[i] ? 1 : 0;
  }
  console.log(
    `| ${attack} | ${m} | ${pct(a, m)} | ${theirs ? pct(b, m) : '(not yet)'} | ${theirs ? d : ''} |`,
  );
}
for (const a of order)
  if (!ours.has(a))
    console.log(
      `| ${a} | | (not yet) | ${pct(
        ref.after[a].robust.slice(0, n).reduce((x, v) => x + v, 0),
        n,
      )} | |`,
    );
