/**
 * One worker's share of an evaluation grid (`robust eval --shard i/n`): of every cell (of every
 * cascade, at each model and eps), the batches shard-plan.ts gives it, run exactly as those batches
 * run in one process, written as parts that `robust merge` (eval/merge.ts) puts together. A killed
 * worker restarted with the same command keeps its finished parts and resumes the part it was in
 * at its batch (the partial-cell mechanism of a one-process grid).
 */
import path from 'node:path';
import type { ImageSet } from '../data/dataset.js';
import { formatEps } from '../util/format.js';
import { check, checkOption } from '../util/errors.js';
import { ensureDir } from '../util/dirs.js';
import { runAttack } from './attack-run.js';
import { readCell } from './cells.js';
import {
  decodeMask,
  floatRows,
  galleryClasses,
  galleryExamples,
  GALLERY_SIZE,
  modelSummary,
  planGrid,
  rowsOf,
  type EvalConfig,
  type EvalModel,
  type GridOptions,
} from './grid.js';
import { partialFile, readPartial, removePartial, writePartial } from './partial-cells.js';
import {
  computeVariant,
  describeCompute,
  legacyCompute,
  type ComputedOn,
} from '../backend/variant.js';
import { modelChecks } from './sanity.js';
import {
  partFile,
  partialKey,
  readPart,
  shardDir,
  readManifest,
  writeManifest,
  writePart,
  type ShardManifest,
} from './shard-files.js';
import { shardLabel, shardRange, type Shard } from './shard-plan.js';

export interface ShardOptions extends Omit<GridOptions, 'onCell'> {
  shard: Shard;
  /** After each of this worker's parts of a cell: done now, or found done (its part, or the whole cell in cells/). */
  onPart?: (p: {
    model: string;
    attack: string;
    eps: number;
    from: number;
    to: number;
    robust: number;
    seconds: number;
    reused: boolean;
  }) => void;
}

export interface ShardRun {
  /** False when stopped (shouldStop) before the share was done. */
  complete: boolean;
  /** The folder the worker wrote: manifest.json and its parts. */
  dir: string;
  parts: number;
  reused: number;
}

/** Examples [from, to) of `set`. */
function slice(set: ImageSet, from: number, to: number): ImageSet {
  const per = set.height * set.width * set.channels;
  return {
    ...set,
    images: set.images.subarray(from * per, to * per),
    labels: set.labels.subarray(from, to),
    count: to - from,
  };
}

/** The manifest of this worker: the whole grid (every worker's is the same but for `shard`), so the merge can check that all ran one grid. */
function manifestOf(
  config: EvalConfig,
  plans: ReturnType<typeof planGrid>,
  o: ShardOptions & ComputedOn,
): ShardManifest {
  const first = plans[0].test;
  const shape = (s: ImageSet) => `${s.height}×${s.width}×${s.channels}`;
  const other = plans.find((p) => shape(p.test) !== shape(first));
  check(
    !other,
    () =>
      `all models must be evaluated on images of one shape: ${shape(first)} and ${shape(other!.test)}`,
  ); // the merge draws galleries in one shape
  return {
    shard: o.shard,
    config,
    backend: o.backend,
    compute: o.compute,
    image: { height: first.height, width: first.width, channels: first.channels },
    models: plans.map((p) => {
      const { clean_acc: _c, ...summary } = modelSummary(
        p,
        modelChecks(p.model.classifier, p.test),
        0,
      );
      return summary;
    }),
    cells: plans.flatMap((p) =>
      p.cells.map((c) => ({
        key: c.key,
        model: p.model.path,
        attack: c.name,
        eps: c.eps,
        settings: c.attack.info,
        ...(c.after ? { after: c.after } : {}),
        chain: c.chain,
        stage: c.stage,
      })),
    ),
  };
}

/** Runs (or resumes) worker `o.shard`'s share of the grid into `<out>/shards/<i>-of-<n>/`. */
export async function runGridShard(
  config: EvalConfig,
  models: EvalModel[],
  o: ShardOptions,
): Promise<ShardRun> {
  const dir = shardDir(o.out, o.shard);
  ensureDir(dir);
  const cellDir = path.join(o.out, 'cells');
  const warn = o.warn ?? console.error;
  const plans = planGrid(config, models);
  const on: ComputedOn = { backend: o.backend, compute: o.compute ?? computeVariant() };
  // finished parts of a worker restarted on another backend would be merged under this one's name
  const before = readManifest(path.join(dir, 'manifest.json')).manifest;
  checkOption(
    !before || before.backend === o.backend,
    (n) =>
      `${dir} holds parts computed on backend ${before?.backend}: run this shard with ${n('backend')} ${before?.backend}, or remove the folder to start it over on ${o.backend}`,
  );
  // …and so would parts of another compute variant (kernels, ROBUST_WINOGRAD, threads)
  const was = before && (before.compute ?? legacyCompute(before.backend));
  check(
    !was || was === on.compute,
    () =>
      `${dir} holds parts computed on ${describeCompute(on.backend, was!)}: run this shard as they were (ROBUST_WASM_KERNELS, ROBUST_WINOGRAD, --threads), or remove the folder to start it over on ${describeCompute(on.backend, on.compute)}`,
  );
  writeManifest(dir, manifestOf(config, plans, { ...o, ...on }));
  const run: ShardRun = { complete: true, dir, parts: 0, reused: 0 };
  for (const { model: m, test, cells } of plans) {
    const per = test.height * test.width * test.channels;
    let survivors: Uint8Array | undefined;
    for (const c of cells) {
      const { name, eps, attack, key } = c;
      const { from, to } = shardRange(test.count, config.batchSize, o.shard, c.chain);
      if (from === to) continue; // a chain with fewer batches than workers: none for this one
      if (c.stage === 0) survivors = undefined;
      const report = (robust: Uint8Array, seconds: number, reused: boolean) =>
        o.onPart?.({
          model: m.path,
          attack: name,
          eps,
          from,
          to,
          robust: robust.reduce((s, v) => s + v, 0) / robust.length,
          seconds,
          reused,
        });
      // The whole cell, from a one-process run or an earlier merge: nothing to do here.
      const whole = readCell(path.join(cellDir, `${key}.json`), {
        model: m.path,
        attack: name,
        eps,
        n: test.count,
      });
      if (whole.cell) {
        if (config.cascade) survivors = decodeMask(whole.cell.robust).subarray(from, to);
        run.reused++;
        report(decodeMask(whole.cell.robust).subarray(from, to), 0, true);
        continue;
      }
      const file = partFile(dir, key);
      const done = readPart(file, { key, shard: o.shard, from, to, per, only: survivors });
      if (done.damaged)
        warn(`warning: ${file}: damaged shard part (${done.damaged}); computing it again`);
      if (done.part) {
        if (config.cascade) survivors = done.part.robust;
        run.reused++;
        report(done.part.robust, done.part.seconds, true);
        continue;
      }
      if (o.shouldStop?.()) return { ...run, complete: false };
      const share = slice(test, from, to);
      const partial = partialFile(dir, key);
      const pKey = partialKey(key, o.shard, from, to);
      const runOptions = {
        batchSize: config.batchSize,
        keepAdversarials: { firstCorrect: GALLERY_SIZE },
        only: survivors,
        outcomes: true,
      };
      const resumed = readPartial(partial, {
        key: pKey,
        set: share,
        ...on,
        ...runOptions,
      });
      if (resumed.damaged)
        warn(
          `warning: ${partial}: damaged partial cell (${resumed.damaged}); starting the part from its first batch`,
        );
      if (resumed.computedOn)
        warn(
          `note: ${partial}: ${resumed.computedOn}; starting the part from its first batch (batches computed differently are not mixed in one cell)`,
        );
      const r = await runAttack(m.classifier, attack, share, {
        ...runOptions,
        firstBatch: from / config.batchSize,
        quiet: o.quiet,
        seed: config.seed,
        label: `${m.name} ${name} eps ${formatEps(eps)} [shard ${shardLabel(o.shard)}: images ${from}–${to}]`,
        shouldStop: o.shouldStop,
        resume: resumed.state,
        onBatch: (state) => {
          if (state.seen < share.count) writePartial(partial, pKey, state, on);
        },
      });
      if (r.stats.n < share.count) return { ...run, complete: false };
      const shown = galleryExamples(r.cleanCorrect); // indices within the share
      const shownRows = floatRows(r.adversarial!, per, shown);
      writePart(file, {
        key,
        shard: o.shard,
        from,
        to,
        seconds: r.stats.seconds,
        cleanCorrect: r.cleanCorrect,
        robust: r.robust,
        outcomes: r.outcomes!,
        gallery: {
          index: shown.map((i) => from + i),
          images: shownRows,
          clean: rowsOf(share, shown).images,
          classes: galleryClasses(m.classifier, share, shown, shownRows, m.classes),
        },
      });
      removePartial(partial);
      if (config.cascade) survivors = r.robust;
      run.parts++;
      report(r.robust, r.stats.seconds, false);
    }
  }
  return run;
}
