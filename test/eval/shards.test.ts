/** A grid split over n workers (runGridShard) and merged (mergeShards) is the one-process grid, exactly. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { initBackend } from '../../backend/index.js';
import { useRelaxedSimd } from '../../backend/wasm/wasm-kernels.js';
import { runGrid, type EvalConfig, type EvalModel, type GridResult } from '../../eval/grid.js';
import { runAttack, type AttackRun } from '../../eval/attack-run.js';
import { runGridShard } from '../../eval/shards.js';
import { mergeShards, writeMerged } from '../../eval/merge.js';
import { parseShard, shardRange, type Shard } from '../../eval/shard-plan.js';
import { shardDir } from '../../eval/shard-files.js';
import { isPartialFile } from '../../eval/partial-cells.js';
import { writeDigested } from '../../eval/cells.js';
import { PRESETS } from '../../eval/presets.js';
import { toMarkdown } from '../../eval/report.js';
import { makeAttack } from '../../attacks/index.js';
import { RobustError } from '../../util/errors.js';
import type { ImageSet } from '../../data/dataset.js';
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
  // misclassify some of the first batch: the gallery's first 8 clean-correct examples span two batches (and two shards)
  model = gridModel(set, [0, 2, 3, 5, 6]);
});

const plain: EvalConfig = {
  models: ['m'],
  attacks: ['fgsm', 'pgd:3'],
  eps: [0.03, 0.08],
  norm: 'linf',
  limit: N,
  batchSize: BATCH,
  seed: 3,
};
const cascade: EvalConfig = {
  ...plain,
  attacks: PRESETS.autoattack.attacks,
  cascade: true,
  steps: 2,
};

/** Everything but the time spent and the date. */
const numbers = (r: GridResult) => ({
  ...r,
  date: '',
  cells: r.cells.map(({ stats: { seconds: _s, img_per_s: _i, ...stats }, ...c }) => ({
    ...c,
    stats,
  })),
});
/** The cell files of a results folder without their times and digest, by name. */
function cellFiles(out: string): Record<string, unknown> {
  const dir = path.join(out, 'cells');
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json') && !isPartialFile(f))
      .map((f) => {
        const {
          digest: _d,
          stats: { seconds: _s, img_per_s: _i, ...stats },
          ...cell
        } = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
        return [f, { ...cell, stats }];
      }),
  );
}

async function oneProcess(config: EvalConfig): Promise<{ out: string; result: GridResult }> {
  const out = tmpDir('shard-one');
  const { result } = await runGrid(config, [model], { out, backend: 'wasm', quiet: true });
  return { out, result };
}

async function allShards(
  config: EvalConfig,
  n: number,
  out = tmpDir(`shards-${n}`),
  m = model,
): Promise<string> {
  for (let index = 0; index < n; index++) {
    const r = await runGridShard(config, [m], {
      out,
      backend: 'wasm',
      quiet: true,
      shard: { index, count: n },
      warn: (w) => expect.fail(w),
    });
    expect(r.complete).toBe(true);
  }
  return out;
}

describe('the split', () => {
  it('every batch of a chain goes to exactly one worker, in contiguous runs whose sizes differ by at most one batch', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(100),
        (examples, batch, n, chain) => {
          const ranges = Array.from({ length: n }, (_, index) =>
            shardRange(examples, batch, { index, count: n }, chain),
          );
          const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from);
          let at = 0;
          for (const r of sorted) {
            expect(r.from).toBe(at);
            expect(r.from % batch).toBe(0);
            at = r.to;
          }
          expect(at).toBe(examples);
          const sizes = ranges.map((r) => Math.ceil(r.to / batch) - Math.ceil(r.from / batch));
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('chains with fewer batches than workers go to different workers', () => {
    const busy = (chain: number) =>
      [0, 1, 2, 3, 4, 5, 6].filter((index) => {
        const r = shardRange(24, 8, { index, count: 7 }, chain);
        return r.to > r.from;
      });
    expect(busy(0)).toHaveLength(3);
    expect(new Set([0, 1, 2].flatMap(busy)).size).toBe(7);
  });

  it('--shard i/n and auto (Kubernetes Indexed Job, Slurm array), each bad value one line', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(parseShard('auto', { JOB_COMPLETION_INDEX: '3', JOB_COMPLETIONS: '4' })).toEqual({
      index: 3,
      count: 4,
    });
    expect(parseShard('auto', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4' })).toEqual({
      index: 1,
      count: 4,
    });
    expect(
      parseShard('auto', {
        SLURM_ARRAY_TASK_ID: '4',
        SLURM_ARRAY_TASK_COUNT: '4',
        SLURM_ARRAY_TASK_MIN: '1',
        SLURM_ARRAY_TASK_MAX: '4',
      }),
    ).toEqual({ index: 3, count: 4 });
    const bad: [string, NodeJS.ProcessEnv, RegExp][] = [
      ['5/5', {}, /index must be an integer from 0 to 4/],
      ['1/0', {}, /number of shards must be an integer from 1/],
      ['1/1000000', {}, /from 1 to 100000/],
      ['-1/3', {}, /must be i\/n/],
      ['1/3/4', {}, /must be i\/n/],
      ['0x1/3', {}, /must be i\/n/],
      ['auto', {}, /found neither JOB_COMPLETION_INDEX .* nor SLURM_ARRAY_TASK_ID/],
      ['auto', { JOB_COMPLETION_INDEX: '1' }, /JOB_COMPLETIONS is not/],
      [
        'auto',
        { JOB_COMPLETION_INDEX: '4', JOB_COMPLETIONS: '4' },
        /index must be an integer from 0 to 3/,
      ],
      [
        'auto',
        { JOB_COMPLETION_INDEX: 'x', JOB_COMPLETIONS: '4' },
        /JOB_COMPLETION_INDEX must be a non-negative integer/,
      ],
      [
        'auto',
        {
          SLURM_ARRAY_TASK_ID: '4',
          SLURM_ARRAY_TASK_COUNT: '4',
          SLURM_ARRAY_TASK_MIN: '0',
          SLURM_ARRAY_TASK_MAX: '12',
        },
        /has 4 tasks, not one per id/,
      ],
    ];
    for (const [v, env, why] of bad) {
      let e: unknown;
      try {
        parseShard(v, env);
      } catch (err) {
        e = err;
      }
      expect(e, `${v} ${JSON.stringify(env)}`).toBeInstanceOf(RobustError);
      expect((e as Error).message).toMatch(why);
      expect((e as Error).message.split('\n')).toHaveLength(1);
    }
  });
});

describe('runAttack over a slice of the set', () => {
  it("gives exactly what the whole run gives there: each batch's random starts and targets come from its index", async () => {
    const per = 8 * 8 * 3;
    const slice = (from: number, to: number): ImageSet => ({
      ...set,
      images: set.images.subarray(from * per, to * per),
      labels: set.labels.subarray(from, to),
      count: to - from,
    });
    for (const [name, opts] of [
      ['pgd', { targeted: 'random' }],
      ['apgd-t', { targetClasses: 2 }],
      ['square', {}],
    ] as const) {
      const make = () =>
        makeAttack(name, model.classifier, { eps: 0.05, steps: 3, seed: 5, ...opts });
      const whole = await runAttack(model.classifier, make(), set, {
        batchSize: BATCH,
        quiet: true,
        outcomes: true,
        keepAdversarials: true,
      });
      const part: AttackRun = await runAttack(model.classifier, make(), slice(16, 24), {
        batchSize: BATCH,
        quiet: true,
        outcomes: true,
        keepAdversarials: true,
        firstBatch: 2,
      });
      expect(whole.stats.attacked, name).toBeGreaterThan(0);
      expect(part.robust, name).toEqual(whole.robust.subarray(16));
      expect(part.outcomes, name).toEqual({
        perturbed: whole.outcomes!.perturbed.subarray(16),
        counted: whole.outcomes!.counted.subarray(16),
        success: whole.outcomes!.success.subarray(16),
        linf: whole.outcomes!.linf.subarray(16),
        l2: whole.outcomes!.l2.subarray(16),
        l1: whole.outcomes!.l1.subarray(16),
      });
      expect(part.adversarial, name).toEqual(whole.adversarial!.subarray(16 * per));
    }
  });
});

describe('n workers, then a merge', () => {
  for (const [what, config, counts] of [
    ['a grid', plain, [1, 2, 3, 7]],
    ['the autoattack cascade', cascade, [2, 7]],
  ] as const) {
    it(`${what}: for n = ${counts.join(', ')} the same results and cell files as one process (times aside), and a later one-process run reuses the merged cells`, async () => {
      const one = await oneProcess(config);
      for (const n of counts) {
        const out = await allShards(config, n);
        const merged = mergeShards([out]);
        expect(merged.missing).toBeUndefined();
        await writeMerged(out, merged);
        expect(numbers(merged.result), `n = ${n}`).toEqual(numbers(one.result));
        expect(merged.result.compute).toMatch(/^robust kernels, Winograd F\(4x4,3x3\)/); // from the manifests
        expect(cellFiles(out), `n = ${n}`).toEqual(cellFiles(one.out));
        if (n === counts[0]) {
          let reused = 0;
          await runGrid(config, [model], {
            out,
            backend: 'wasm',
            quiet: true,
            onCell: (_, r) => void (r && reused++),
          });
          expect(reused).toBe(config.attacks.length * config.eps.length);
        }
      }
    });
  }

  it('a worker stopped mid-part (after any batch) and run again resumes it at its batch, ending as one process', async () => {
    const one = await oneProcess(cascade);
    const out = tmpDir('shards-stopped');
    const shard: Shard = { index: 1, count: 2 };
    const partials = () => fs.readdirSync(shardDir(out, shard)).filter(isPartialFile);
    // each run stops right after it saved one batch (a partial) or finished one part, as a kill there would
    let runs = 0;
    for (;;) {
      runs++;
      let progressed = false;
      const real = fs.renameSync;
      const spy = vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
        if (/\.(partial|part)\.json$/.test(String(to))) progressed = true;
        return real(from, to);
      });
      try {
        const r = await runGridShard(cascade, [model], {
          out,
          backend: 'wasm',
          quiet: true,
          shard,
          shouldStop: () => progressed,
          warn: (w) => expect.fail(w),
        });
        if (r.complete) break;
      } finally {
        spy.mockRestore();
      }
      expect(runs).toBeLessThan(40);
    }
    // worker 1 of 2 has 1 or 2 of each chain's 3 batches: one run per batch, none done twice
    const batches = [0, 1].reduce(
      (t, chain) =>
        t +
        shardRange(N, BATCH, shard, chain).to / BATCH -
        shardRange(N, BATCH, shard, chain).from / BATCH,
      0,
    );
    expect(runs).toBe(batches * cascade.attacks.length);
    expect(partials()).toEqual([]);
    await runGridShard(cascade, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      shard: { index: 0, count: 2 },
    });
    expect(numbers(mergeShards([out]).result)).toEqual(numbers(one.result));
  });
});

describe('a partial of another shard', () => {
  it("is not taken for this shard's share of the cell: one warning, the share from its first batch", async () => {
    const out = tmpDir('shards-foreign-partial');
    const [zero, one] = [0, 1].map((index): Shard => ({ index, count: 2 }));
    const partials = (s: Shard) => fs.readdirSync(shardDir(out, s)).filter(isPartialFile);
    await runGridShard(plain, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      shard: one,
      shouldStop: () => partials(one).length > 0,
    });
    const [name] = partials(one);
    fs.mkdirSync(shardDir(out, zero), { recursive: true });
    fs.copyFileSync(path.join(shardDir(out, one), name), path.join(shardDir(out, zero), name));
    const warnings: string[] = [];
    await runGridShard(plain, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      shard: zero,
      warn: (w) => warnings.push(w),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: .*0-of-2.*\.partial\.json: damaged partial cell \(it belongs to another cell\); starting the part from its first batch$/,
    );
    await runGridShard(plain, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      shard: one,
      warn: (w) => expect.fail(w),
    });
    const merged = await allShards(plain, 1);
    expect(numbers(mergeShards([out]).result)).toEqual(numbers(mergeShards([merged]).result));
  });
});

describe('what the merge refuses', () => {
  const small = plain;
  let full: string;
  beforeAll(async () => {
    full = await allShards(small, 3);
  });
  const copy = () => {
    const out = tmpDir('shards-copy');
    fs.cpSync(full, out, { recursive: true });
    return out;
  };
  const refusal = (f: () => unknown): string => {
    let e: unknown;
    try {
      f();
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(RobustError);
    const message = (e as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  };

  it('shards of another grid: another eps list, other weights, other data — one line naming both shards and the difference', async () => {
    const eps = copy();
    await runGridShard({ ...small, eps: [0.03] }, [model], {
      out: eps,
      backend: 'wasm',
      quiet: true,
      shard: { index: 1, count: 3 },
    });
    expect(refusal(() => mergeShards([eps]))).toMatch(
      /^shards 0\/3 \(.*\) and 1\/3 \(.*\) ran different grids: eps \[0\.03,0\.08\] vs \[0\.03\]$/,
    );

    const weights = copy();
    await runGridShard(small, [{ ...model, fingerprint: 'a'.repeat(64) }], {
      out: weights,
      backend: 'wasm',
      quiet: true,
      shard: { index: 2, count: 3 },
    });
    expect(refusal(() => mergeShards([weights]))).toMatch(
      /ran different grids: model m: another model \(weights, preprocessing or logits; fingerprint f… vs a{12}…\)$/,
    );

    const data = copy();
    const other = { ...set, images: set.images.map((v, i) => (i === 5 ? 255 - v : v)) };
    await runGridShard(small, [{ ...model, test: other }], {
      out: data,
      backend: 'wasm',
      quiet: true,
      shard: { index: 0, count: 3 },
    });
    expect(refusal(() => mergeShards([data]))).toMatch(
      /^shards 0\/3 .* and 1\/3 .* ran different grids: model m: other test images \(sha256 [0-9a-f]{12}… vs [0-9a-f]{12}…\)$/,
    );

    const backend = copy();
    // a worker restarted on another backend does not add to the parts it made on the first
    await expect(
      runGridShard(small, [model], {
        out: backend,
        backend: 'cpu',
        quiet: true,
        shard: { index: 1, count: 3 },
      }),
    ).rejects.toThrow(/holds parts computed on backend wasm/);
    fs.rmSync(shardDir(backend, { index: 1, count: 3 }), { recursive: true });
    await runGridShard(small, [model], {
      out: backend,
      backend: 'cpu',
      quiet: true,
      shard: { index: 1, count: 3 },
    });
    expect(refusal(() => mergeShards([backend]))).toMatch(
      /ran different grids: backend wasm vs cpu$/,
    );

    // likewise a worker restarted on another compute variant (kernels, ROBUST_WINOGRAD)
    const variant = copy();
    const f2 = 'robust kernels, Winograd F(2x2,3x3)';
    await expect(
      runGridShard(small, [model], {
        out: variant,
        backend: 'wasm',
        compute: f2,
        quiet: true,
        shard: { index: 1, count: 3 },
      }),
    ).rejects.toThrow(
      /holds parts computed on wasm \(robust kernels, Winograd F\(4x4,3x3\)\): run this shard as they were .* start it over on wasm \(robust kernels, Winograd F\(2x2,3x3\)\)$/,
    );
    fs.rmSync(shardDir(variant, { index: 1, count: 3 }), { recursive: true });
    await runGridShard(small, [model], {
      out: variant,
      backend: 'wasm',
      compute: f2,
      quiet: true,
      shard: { index: 1, count: 3 },
    });
    expect(refusal(() => mergeShards([variant]))).toMatch(
      /ran different grids: compute robust kernels, Winograd F\(4x4,3x3\) vs robust kernels, Winograd F\(2x2,3x3\)$/,
    );
  });

  it('shards spread over several results folders (one per site, say) merge as one, written where asked', async () => {
    const a = copy();
    const b = tmpDir('shards-b');
    fs.cpSync(shardDir(a, { index: 2, count: 3 }), shardDir(b, { index: 2, count: 3 }), {
      recursive: true,
    });
    fs.rmSync(shardDir(a, { index: 2, count: 3 }), { recursive: true });
    const merged = mergeShards([a, b, a]);
    expect(numbers(merged.result)).toEqual(numbers(mergeShards([full]).result));
    const elsewhere = tmpDir('shards-out');
    await writeMerged(elsewhere, merged);
    expect(fs.readdirSync(elsewhere).sort()).toEqual([
      'cells',
      'report.html',
      'results.csv',
      'results.json',
      'results.md',
    ]);
    expect(fs.readdirSync(path.join(elsewhere, 'cells'))).toHaveLength(4);
  });

  it('missing parts: one line naming the shard and cells; --partial merges the rest and marks the table incomplete', async () => {
    const out = copy();
    const dir = shardDir(out, { index: 1, count: 3 });
    fs.rmSync(
      path.join(
        dir,
        fs.readdirSync(dir).find((f) => f.endsWith('.part.json'))!,
      ),
    );
    expect(refusal(() => mergeShards([out]))).toMatch(
      /^cannot merge: 1 of 4 cells missing; parts missing from shard 1\/3: m (fgsm|pgd:3) eps 0\.0[38]\. Run the missing shards \(the same command resumes them\), or merge with partial$/,
    );
    const partial = mergeShards([out], { partial: true });
    expect(partial.result.cells).toHaveLength(3);
    expect(partial.result.incomplete).toMatch(
      /^1 of 4 cells missing; parts missing from shard 1\/3/,
    );
    expect(toMarkdown(partial.result)).toMatch(/\*\*Incomplete:\*\* 1 of 4 cells missing/);
    expect(toMarkdown(partial.result)).toMatch(/\| – \|/);

    fs.rmSync(shardDir(out, { index: 2, count: 3 }), { recursive: true });
    const why =
      /4 of 4 cells missing; parts missing from shard 1\/3: m \S+ eps \S+; shard 2\/3 \(never started: no manifest\): m fgsm eps 0\.03, m pgd:3 eps 0\.03, m fgsm eps 0\.08 and 1 more$/;
    expect(refusal(() => mergeShards([out], { partial: true }))).toMatch(
      new RegExp(`^nothing to merge: ${why.source}`),
    );
  });

  it('a shard twice (two results folders holding it), or shards of two splits: one line naming them', async () => {
    const a = copy();
    const b = copy();
    expect(refusal(() => mergeShards([a, b]))).toMatch(
      /^duplicated shards: 0\/3 in .*a.* and .*; 1\/3 in .*; 2\/3 in .*: keep one copy of each$/,
    );
    await runGridShard(small, [model], {
      out: a,
      backend: 'wasm',
      quiet: true,
      shard: { index: 0, count: 2 },
    });
    expect(refusal(() => mergeShards([a]))).toMatch(
      /^the shards come from different splits \(2 workers: 0\/2 .*; 3 workers: 0\/3 .*\): merge one split/,
    );
    expect(refusal(() => mergeShards([tmpDir('empty')]))).toMatch(/^no shards in /);
  });

  it('a damaged part: the merge names it; the worker run again warns once and computes it again', async () => {
    const out = copy();
    const shard = { index: 0, count: 3 };
    const file = path.join(
      shardDir(out, shard),
      fs.readdirSync(shardDir(out, shard)).find((f) => f.endsWith('.part.json'))!,
    );
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete v.digest;
    v.outcomes.linf = Buffer.from(new Float32Array(8).fill(NaN).buffer).toString('base64');
    writeDigested(file, v);
    expect(refusal(() => mergeShards([out]))).toMatch(
      /damaged parts: .*\.part\.json \(example \d+: its linf size/,
    );
    const warnings: string[] = [];
    await runGridShard(small, [model], {
      out,
      backend: 'wasm',
      quiet: true,
      shard,
      warn: (w) => warnings.push(w),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: .*\.part\.json: damaged shard part \(example \d+: .*\); computing it again$/,
    );
    expect(numbers(mergeShards([out]).result)).toEqual(numbers(mergeShards([full]).result));
  });

  it('sums are added example by example in example order, as one process adds them, not part by part', async () => {
    const out = copy();
    const key = JSON.parse(
      fs.readFileSync(path.join(shardDir(out, { index: 0, count: 3 }), 'manifest.json'), 'utf8'),
    ).cells[0].key;
    // l1 sizes whose float sum depends on the order: 128 first, then values of a quarter of 128's last bit
    const tiny = 2 ** -47;
    const sizes: number[] = [];
    for (const index of [0, 1, 2]) {
      const file = path.join(shardDir(out, { index, count: 3 }), `${key}.part.json`);
      const { digest: _d, ...v } = JSON.parse(fs.readFileSync(file, 'utf8'));
      const perturbed = Buffer.from(v.outcomes.perturbed, 'base64');
      const l1 = new Float32Array(perturbed.length);
      perturbed.forEach((p, i) => {
        if (p) l1[i] = index === 0 ? (sizes.length === 0 ? 128 : 0) : tiny;
        if (p) sizes.push(l1[i]);
      });
      v.outcomes.l1 = Buffer.from(l1.buffer).toString('base64');
      writeDigested(file, v);
    }
    const inOrder = sizes.reduce((a, b) => a + b, 0);
    const byPart = 128 + sizes.filter((x) => x === tiny).reduce((a, b) => a + b, 0);
    expect(byPart).not.toBe(inOrder); // the two orders differ in the last bit here
    const cell = mergeShards([out]).result.cells.find(
      (c) => c.eps === plain.eps[0] && c.attack === plain.attacks[0],
    )!;
    expect(cell.stats.l1_mean).toBe(inOrder / sizes.length);
    expect(cell.stats.l1_max).toBe(128);
  });

  it("a part under another cell's name is not taken for it", async () => {
    const out = copy();
    const dir = shardDir(out, { index: 1, count: 3 });
    const [a, b] = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.part.json'))
      .sort();
    fs.copyFileSync(path.join(dir, a), path.join(dir, b));
    expect(refusal(() => mergeShards([out]))).toMatch(
      /damaged parts: .*\.part\.json \(it belongs to another cell\)/,
    );
  });
});
