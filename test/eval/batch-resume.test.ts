/** A grid stopped mid-cell resumes at the batch it was in and ends exactly as an uninterrupted run. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import { initBackend } from '../../backend/index.js';
import { useRelaxedSimd, useWinograd } from '../../backend/wasm/wasm-kernels.js';
import { reportFiles } from '../../eval/report-core.js';
import { runGrid, type EvalConfig, type EvalModel, type GridResult } from '../../eval/grid.js';
import { runAttack, type AttackRun } from '../../eval/attack-run.js';
import type { AttackRunState } from '../../eval/attack-state.js';
import { writeDigested } from '../../eval/cells.js';
import { isPartialFile } from '../../eval/partial-cells.js';
import { PRESETS } from '../../eval/presets.js';
import { writeReports } from '../../eval/report.js';
import { readGrid } from '../../cli/eval-command.js';
import { makeAttack } from '../../attacks/index.js';
import { gridModel, syntheticSet } from './fixtures.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const N = 24;
const BATCH = 8;
const set = syntheticSet(N);
let model: EvalModel;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  // the plain SIMD build (ROBUST_RELAXED_SIMD=0): the variants named below are its own
  useRelaxedSimd(false);
  // Five of the first batch misclassified: the gallery's first 8 clean-correct examples span two batches.
  model = gridModel(set, [0, 2, 3, 5, 6]);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const base: EvalConfig = {
  models: ['m'],
  attacks: ['pgd:3'],
  eps: [0.05],
  norm: 'linf',
  limit: N,
  batchSize: BATCH,
  seed: 3,
};

/** What an uninterrupted run must give: everything but the time spent. */
const numbers = (r: GridResult) => ({
  cells: r.cells.map(({ stats: { seconds: _s, img_per_s: _i, ...stats }, backend: _b, ...c }) => ({
    ...c,
    stats,
  })),
  worst: r.worst,
});

const partials = (out: string) => fs.readdirSync(path.join(out, 'cells')).filter(isPartialFile);

/** Counts the partial files renamed into place (one per batch saved) while `fn` runs. */
async function countingPartialWrites<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; writes: number }> {
  const real = fs.renameSync;
  let writes = 0;
  const spy = vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
    if (isPartialFile(String(to))) writes++;
    return real(from, to);
  });
  try {
    return { value: await fn(), writes };
  } finally {
    spy.mockRestore();
  }
}

/**
 * Runs the grid to its end in runs of one batch each: every run stops right after it saved one
 * batch (a partial) or finished one cell, as a kill there would. Returns the last result and how
 * many runs it took.
 */
async function oneBatchPerRun(
  config: EvalConfig,
  out: string,
  o: { stderr?: string[] } = {},
): Promise<{ result: GridResult; runs: number }> {
  const cellsTotal = config.attacks.length * config.eps.length;
  const limit = cellsTotal * Math.ceil(N / BATCH) + 1;
  for (let runs = 1; runs <= limit; runs++) {
    let progressed = false;
    const real = fs.renameSync;
    const spy = vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (isPartialFile(String(to))) progressed = true;
      return real(from, to);
    });
    const write =
      o.stderr &&
      vi
        .spyOn(process.stderr, 'write')
        .mockImplementation((s) => (o.stderr!.push(String(s)), true));
    try {
      const r = await runGrid(config, [model], {
        out,
        backend: 'wasm',
        quiet: !o.stderr,
        shouldStop: () => progressed,
        onCell: (_, reused) => void (reused || (progressed = true)),
        warn: (m) => expect.fail(m),
      });
      if (r.complete) return { result: r.result, runs };
    } finally {
      spy.mockRestore();
      write?.mockRestore();
    }
  }
  throw new Error(`the grid did not finish in ${limit} runs of one batch`);
}

describe('a grid stopped after every batch', () => {
  const cases: [string, EvalConfig][] = [
    ['pgd (random start)', base],
    ['apgd-t (targeted, random start)', { ...base, attacks: ['apgd-t:2'] }],
    [
      "the autoattack cascade (random starts, Square's random search)",
      { ...base, attacks: PRESETS.autoattack.attacks, cascade: true, steps: 2, eps: [0.03, 0.08] },
    ],
  ];
  for (const [what, config] of cases) {
    it(`${what}: resumes each cell at its next batch and ends exactly as an uninterrupted run`, async () => {
      const straight = await runGrid(config, [model], {
        out: tmpDir('resume-straight'),
        backend: 'wasm',
        quiet: true,
      });
      const out = tmpDir('resume-batches');
      const { result, runs } = await oneBatchPerRun(config, out);
      // one run per batch: no batch was done twice
      expect(runs).toBe(config.attacks.length * config.eps.length * Math.ceil(N / BATCH));
      expect(numbers(result)).toEqual(numbers(straight.result));
      expect(result.cells.filter((c) => c.gallery)).toHaveLength(config.attacks.length);
      expect(partials(out)).toEqual([]); // removed as each cell was written
    });
  }

  it('progress says where a cell resumed', async () => {
    const stderr: string[] = [];
    await oneBatchPerRun(base, tmpDir('resume-progress'), { stderr });
    const text = stderr.join('');
    expect(text).toMatch(/m pgd:3 eps 0\.05 resumed at 8\/24/);
    expect(text).toMatch(/m pgd:3 eps 0\.05 resumed at 16\/24/);
  });
});

describe('runAttack from a saved state', () => {
  /** The run stopped after `k` batches (its last reported state), then continued by a fresh attack object. */
  async function stoppedAndResumed(
    name: string,
    opts: object,
    k: number,
    runOpts: object,
  ): Promise<{ straight: AttackRun; resumed: AttackRun }> {
    const make = () =>
      makeAttack(name, model.classifier, { eps: 0.05, steps: 3, seed: 5, ...opts });
    const straight = await runAttack(model.classifier, make(), set, {
      batchSize: BATCH,
      quiet: true,
      ...runOpts,
    });
    let state: AttackRunState | undefined;
    let batches = 0;
    const first = await runAttack(model.classifier, make(), set, {
      batchSize: BATCH,
      quiet: true,
      ...runOpts,
      shouldStop: () => batches >= k,
      onBatch: (s) => ((state = s), batches++),
    });
    expect(first.stats.n).toBe(k * BATCH);
    expect(state!.seen).toBe(k * BATCH);
    const resumed = await runAttack(model.classifier, make(), set, {
      batchSize: BATCH,
      quiet: true,
      ...runOpts,
      resume: state,
    });
    return { straight, resumed };
  }
  const same = (a: AttackRun, b: AttackRun) => {
    const { seconds: _s, img_per_s: _i, ...stats } = a.stats;
    const { seconds: _t, img_per_s: _j, ...other } = b.stats;
    expect(other).toEqual(stats);
    expect(b.robust).toEqual(a.robust);
    expect(b.cleanCorrect).toEqual(a.cleanCorrect);
    expect(b.adversarial).toEqual(a.adversarial);
  };

  it("random targets (the run's own stream) and random starts (the attack's): the same as a run that never stopped, every adversarial image included", async () => {
    for (const k of [1, 2]) {
      const { straight, resumed } = await stoppedAndResumed('pgd', { targeted: 'random' }, k, {
        keepAdversarials: true,
      });
      expect(straight.stats.attacked).toBeGreaterThan(0);
      same(straight, resumed);
    }
  });

  it("keeping only the first clean-correct examples' images: the rest are their clean images, resumed or not", async () => {
    const { straight, resumed } = await stoppedAndResumed('pgd', {}, 1, {
      keepAdversarials: { firstCorrect: 4 },
    });
    same(straight, resumed);
    const per = 8 * 8 * 3;
    const changed = Array.from({ length: N }, (_, i) =>
      straight
        .adversarial!.subarray(i * per, (i + 1) * per)
        .some((v, j) => v !== Math.fround(set.images[i * per + j] / 255)),
    );
    const firstCorrect = Array.from(straight.cleanCorrect.keys())
      .filter((i) => straight.cleanCorrect[i])
      .slice(0, 4);
    expect(changed.flatMap((c, i) => (c ? [i] : []))).toEqual(firstCorrect);
  });

  it('refuses a state from another batch size or without the images this run keeps', async () => {
    let state: AttackRunState | undefined;
    const attack = makeAttack('fgsm', model.classifier, { eps: 0.05 });
    await runAttack(model.classifier, attack, set, {
      batchSize: BATCH,
      quiet: true,
      onBatch: (s) => (state ??= s),
    });
    await expect(
      runAttack(model.classifier, attack, set, { batchSize: 16, quiet: true, resume: state }),
    ).rejects.toThrow(/cannot resume the attack run: seen 8 is not at the end of a batch of 16/);
    await expect(
      runAttack(model.classifier, attack, set, {
        batchSize: BATCH,
        quiet: true,
        keepAdversarials: true,
        resume: state,
      }),
    ).rejects.toThrow(/kept no adversarial images/);
  });
});

describe('a partial cell that cannot be trusted', () => {
  const config: EvalConfig = { ...base, attacks: ['pgd:3', 'bim:3'] };
  let straight: GridResult;
  let stopped: string;
  let keys: Record<string, string>;

  beforeAll(async () => {
    const full = tmpDir('partial-full');
    straight = (await runGrid(config, [model], { out: full, backend: 'wasm', quiet: true })).result;
    keys = Object.fromEntries(
      fs
        .readdirSync(path.join(full, 'cells'))
        .map((f) => [
          JSON.parse(fs.readFileSync(path.join(full, 'cells', f), 'utf8')).attack,
          f.replace('.json', ''),
        ]),
    );
    // stopped after pgd's first batch
    stopped = tmpDir('partial-stopped');
    await runGrid(config, [model], {
      out: stopped,
      backend: 'wasm',
      quiet: true,
      shouldStop: () => partials(stopped).length > 0,
    });
    expect(partials(stopped)).toEqual([`${keys['pgd:3']}.partial.json`]);
  });

  /** Resumes a copy of the stopped run with `edit` applied to its cells folder: it must warn once, start pgd from batch 0 and end as an uninterrupted run. */
  async function notTrusted(
    edit: (cellDir: string, partial: string, text: string) => void,
    from = stopped,
    kind: 'damaged' | 'computed differently' = 'damaged',
  ): Promise<string> {
    const out = tmpDir('partial-edited');
    fs.cpSync(from, out, { recursive: true });
    const cellDir = path.join(out, 'cells');
    const partial = path.join(cellDir, partials(out)[0]);
    edit(cellDir, partial, fs.readFileSync(partial, 'utf8'));
    const warnings: string[] = [];
    const { value: r, writes } = await countingPartialWrites(() =>
      runGrid(config, [model], {
        out,
        backend: 'wasm',
        quiet: true,
        warn: (m) => warnings.push(m),
      }),
    );
    expect(r.complete).toBe(true);
    expect(numbers(r.result)).toEqual(numbers(straight));
    expect(writes).toBe(2 * 2); // both cells from their first batch: 2 of 3 batches saved each
    expect(warnings).toHaveLength(1);
    // a damaged file and a sound one computed differently are told apart
    expect(warnings[0]).toMatch(
      kind === 'damaged'
        ? /^warning: .*\.partial\.json: damaged partial cell \(.+\); starting the cell from its first batch$/
        : /^note: .*\.partial\.json: its batches ran on .+, this run is on .+; starting the cell from its first batch \(batches computed differently are not mixed in one cell\)$/,
    );
    if (kind !== 'damaged') expect(warnings[0]).not.toMatch(/damaged/);
    expect(warnings[0].split('\n')).toHaveLength(1);
    return warnings[0];
  }

  it('damaged bytes: cut short, overwritten, or other JSON', async () => {
    const text = fs.readFileSync(path.join(stopped, 'cells', partials(stopped)[0]), 'utf8');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.nat().map((k) => text.slice(0, k % text.length)),
          fc
            .tuple(fc.nat(), fc.constantFrom('0', '9', '"', '}', 'x', 'A'))
            .map(([i, s]) => text.slice(0, i % text.length) + s + text.slice((i % text.length) + 1))
            .filter((t) => t !== text),
          fc.constantFrom('', '{}', '[]', 'null'),
        ),
        async (damaged) => {
          await notTrusted((_, partial) => fs.writeFileSync(partial, damaged));
        },
      ),
      { numRuns: 6 },
    );
  });

  it('export reads past a partial cell (a later, stopped run into a finished folder): no warning, every gallery', async () => {
    const out = tmpDir('partial-export');
    await writeReports(
      out,
      (await runGrid(config, [model], { out, backend: 'wasm', quiet: true })).result,
    );
    fs.copyFileSync(
      path.join(stopped, 'cells', partials(stopped)[0]),
      path.join(out, 'cells', `${'0'.repeat(32)}.partial.json`),
    );
    const warnings: string[] = [];
    const r = readGrid(out, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    expect(r.cells.filter((c) => c.gallery)).toHaveLength(2);
  });

  it("another cell's partial, under this cell's name", async () => {
    // pgd's partial moved to where bim's would be: pgd starts afresh, bim must not take it
    const why = await notTrusted((cellDir, partial) =>
      fs.renameSync(partial, path.join(cellDir, `${keys['bim:3']}.partial.json`)),
    );
    expect(why).toMatch(/it belongs to another cell/);
    expect(why).toContain(keys['bim:3']);
  });

  // F(4x4) is the default; the tiny model's 3x3 convs run by Winograd (tested in test/backend)
  const F4 = /^robust kernels, Winograd F\(4x4,3x3\)$/;

  it('a partial written under Winograd F(2x2) (ROBUST_WINOGRAD=2) is started over under the default', async () => {
    const f2 = tmpDir('partial-f2');
    useWinograd(true, 2);
    try {
      await runGrid(config, [model], {
        out: f2,
        backend: 'wasm',
        quiet: true,
        shouldStop: () => partials(f2).length > 0,
      });
    } finally {
      useWinograd(true, 4);
    }
    const saved = JSON.parse(fs.readFileSync(path.join(f2, 'cells', partials(f2)[0]), 'utf8'));
    expect(saved.compute).toBe('robust kernels, Winograd F(2x2,3x3)');
    const why = await notTrusted(() => {}, f2, 'computed differently');
    expect(why).toMatch(
      /its batches ran on wasm \(robust kernels, Winograd F\(2x2,3x3\)\), this run is on wasm \(robust kernels, Winograd F\(4x4,3x3\)\)/,
    );
  });

  it('results name the compute variant: results.json, each cell, the CSV and the reports', async () => {
    expect(straight.compute).toMatch(F4);
    for (const c of straight.cells) expect(c.compute).toBe(straight.compute);
    const files = await reportFiles(straight);
    expect(JSON.parse(files['results.json']).compute).toBe(straight.compute);
    const [header, row] = files['results.csv'].split('\n');
    expect(header.split(',').slice(-2)).toEqual(['backend', 'compute']);
    expect(row).toContain(`,wasm,"${straight.compute}"`);
    expect(files['results.md']).toContain(`backend wasm (${straight.compute})`);
    expect(files['report.html']).toContain(`backend wasm (${straight.compute})`);
    // results from before it was recorded read as the kernels of then (today's F(2x2))
    const { compute: _c, computed_on: _o, ...old } = straight;
    const oldCells = old.cells.map(({ compute: _cc, ...c }) => c);
    const oldFiles = await reportFiles({ ...old, cells: oldCells });
    expect(oldFiles['results.md']).toContain('backend wasm (robust kernels, Winograd F(2x2,3x3))');
    // a worst case over cells of another variant than the run's names theirs (all of them when mixed)
    const f2 = 'robust kernels, Winograd F(2x2,3x3)';
    const worstRow = async (cells: GridResult['cells']) => {
      const rows = parse((await reportFiles({ ...straight, cells }))['results.csv'], {
        columns: true,
      }) as Record<string, string>[];
      return rows.find((w) => w.attack === 'worst-case')!;
    };
    const reused = straight.cells.map((c) => ({ ...c, compute: f2 }));
    expect((await worstRow(reused)).compute).toBe(f2);
    const mixed = straight.cells.map((c, i) => (i === 0 ? { ...c, compute: f2 } : c));
    expect(straight.cells.filter((c) => c.eps === straight.cells[0].eps).length).toBeGreaterThan(1);
    expect((await worstRow(mixed)).compute.split(' + ').sort()).toEqual(
      [f2, straight.compute].sort(),
    );
  });

  const withoutDigest = (v: Record<string, unknown>) => {
    const { digest: _d, ...rest } = v;
    return rest;
  };

  // Edits whose digest is recomputed: each part of the state must agree with the others and with this cell.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed JSON state, edited freely
  type Edit = (s: Record<string, any>) => void;
  const edits: [string, Edit, RegExp, ('computed differently' | 'damaged')?][] = [
    ['seen off a batch end', (s) => void (s.state.seen = 4), /not at the end of a batch/],
    [
      'masks shorter than seen',
      (s) => void (s.state.robust = Buffer.from([1, 1]).toString('base64')),
      /masks have/,
    ],
    [
      'robust without being clean-correct',
      (s) => void (s.state.robust = Buffer.from([1, 1, 1, 1, 1, 1, 1, 1]).toString('base64')),
      /robust without being clean-correct/,
    ],
    ['a tally off the masks', (s) => void (s.state.tally.perturbed += 1), /tally\.perturbed/],
    [
      'more successes than attacks',
      (s) => void (s.state.tally.successes = s.state.tally.attacked + 1),
      /tally\.attacked and tally\.successes/,
    ],
    ['no kept images', (s) => void delete s.state.adversarial, /kept no adversarial images/],
    [
      'a kept image of an example not attacked',
      (s) => void (s.state.adversarial.index[0] = 0),
      /kept image 0 is of example 0/,
    ],
    [
      'kept images cut short',
      (s) => void (s.state.adversarial.images = s.state.adversarial.images.slice(0, 16)),
      /kept images need/,
    ],
    ['another format', (s) => void (s.format = 0), /format must be/],
    [
      'another backend',
      (s) => void (s.backend = 'cpu'),
      /ran on "cpu", this run is on "wasm"/,
      'computed differently',
    ],
    [
      'another compute variant',
      (s) => void (s.compute = 'robust kernels, direct convs'),
      /ran on wasm \(robust kernels, direct convs\), this run is on wasm \(robust kernels, Winograd F\(4x4,3x3\)\)/,
      'computed differently',
    ],
    [
      'no compute variant (a partial from before it was recorded, by the F(2x2) kernels)',
      (s) => void delete s.compute,
      /ran on wasm \(robust kernels, Winograd F\(2x2,3x3\)\), this run is on wasm \(robust kernels, Winograd F\(4x4,3x3\)\)/,
      'computed differently',
    ],
    [
      'another backend and a state off the masks: damaged, whatever it ran on',
      (s) => {
        s.backend = 'cpu';
        s.state.tally.perturbed += 1;
      },
      /tally\.perturbed/,
    ],
    ["another cell's key", (s) => void (s.key = keys['bim:3']), /it belongs to another cell/],
  ];
  for (const [what, edit, why, kind] of edits) {
    it(`with a valid digest but ${what}`, async () => {
      const warning = await notTrusted(
        (_, partial, text) => {
          const v = withoutDigest(JSON.parse(text));
          edit(v);
          writeDigested(partial, v);
        },
        stopped,
        kind,
      );
      expect(warning).toMatch(why);
    });
  }

  it('a partial from before the variant was recorded resumes under ROBUST_WINOGRAD=2, whose kernels wrote it', async () => {
    useWinograd(true, 2);
    try {
      const full = tmpDir('partial-legacy-full');
      const f2 = (await runGrid(config, [model], { out: full, backend: 'wasm', quiet: true }))
        .result;
      const out = tmpDir('partial-legacy');
      await runGrid(config, [model], {
        out,
        backend: 'wasm',
        quiet: true,
        shouldStop: () => partials(out).length > 0,
      });
      const partial = path.join(out, 'cells', partials(out)[0]);
      const v = withoutDigest(JSON.parse(fs.readFileSync(partial, 'utf8')));
      delete v.compute; // as the previous release wrote it
      writeDigested(partial, v);
      const warnings: string[] = [];
      const { value: r, writes } = await countingPartialWrites(() =>
        runGrid(config, [model], {
          out,
          backend: 'wasm',
          quiet: true,
          warn: (m) => warnings.push(m),
        }),
      );
      expect(warnings).toEqual([]);
      expect(r.complete).toBe(true);
      expect(numbers(r.result)).toEqual(numbers(f2));
      expect(writes).toBe(1 + 2); // pgd from its second batch on, bim from its first
    } finally {
      useWinograd(true, 4);
    }
  });
});
