/**
 * `robust merge`: the results of a grid run as shards (eval/shards.ts), put together. It checks
 * that the workers ran one grid (settings, model and data fingerprints, backend) and that their
 * parts cover every cell's images exactly once, then rebuilds each cell as one process computes
 * it: the masks laid side by side, the sums added example by example in example order (the same
 * function, the same order, so the same bits), the gallery from the first clean-correct examples.
 */
import fs from 'node:fs';
import path from 'node:path';
import { optionError, RobustError } from '../util/errors.js';
import { showValue } from '../util/fields.js';
import { formatEps } from '../util/format.js';
import { ensureDir } from '../util/dirs.js';
import { addOutcomes, emptyOutcomes, emptyTally, type ExampleOutcomes } from './attack-state.js';
import { statsOf } from './attack-run.js';
import { readCell, writeCell } from './cells.js';
import { parseEvalConfig } from './config.js';
import {
  cellResult,
  computedOn,
  decodeMask,
  galleryExamples,
  galleryOf,
  worstCases,
  type CellResult,
  type EvalConfig,
  type GridResult,
  type ModelSummary,
} from './grid.js';
import { writeReports } from './report.js';
import { legacyCompute, type ComputedOn } from '../backend/variant.js';
import {
  manifestFile,
  partFile,
  readManifest,
  readPart,
  SHARD_DIR_NAME,
  SHARDS_DIR,
  type ManifestCell,
  type ShardManifest,
  type ShardModel,
  type ShardPart,
} from './shard-files.js';
import { shardLabel, shardName, shardRange } from './shard-plan.js';

export interface MergedGrid {
  result: GridResult;
  /** Every available cell with its key: merged from parts, or found whole in a cells/ folder. */
  cells: { key: string; cell: CellResult }[];
  /** With `partial`, when cells are missing: which (also in result.incomplete). */
  missing?: string;
}

interface Found {
  /** The shard's folder, `<out>/shards/<i>-of-<n>`. */
  dir: string;
  manifest: ShardManifest;
}

/** The shard folders holding a manifest in the results folders `outs`. */
function findShards(outs: string[]): Found[] {
  const found: Found[] = [];
  const seen = new Set<string>();
  for (const out of outs) {
    if (!fs.existsSync(out) || !fs.statSync(out).isDirectory())
      throw new RobustError(`${out}: no such results folder`);
    const real = fs.realpathSync(out);
    if (seen.has(real)) continue; // the same folder named twice
    seen.add(real);
    const root = path.join(out, SHARDS_DIR);
    let names: string[];
    try {
      names = fs.existsSync(root) ? fs.readdirSync(root).filter((d) => SHARD_DIR_NAME.test(d)) : [];
    } catch (e) {
      throw new RobustError(
        `${root}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    for (const name of names.sort()) {
      const dir = path.join(root, name);
      const file = manifestFile(dir);
      const { manifest, damaged } = readManifest(file);
      if (damaged) throw new RobustError(`${file}: damaged shard manifest (${damaged})`);
      if (!manifest) continue; // killed before it wrote its manifest: as if it never started
      if (shardName(manifest.shard) !== name)
        throw new RobustError(
          `${file}: the manifest of shard ${shardLabel(manifest.shard)} in the folder of ${name.replace('-of-', '/')}`,
        );
      found.push({ dir, manifest });
    }
  }
  if (found.length === 0)
    throw optionError(
      (n) =>
        `no shards in ${outs.join(', ')} (workers write <out>/${SHARDS_DIR}/<i>-of-<n>/: run the grid with ${n('shard')} i/n and ${n('out')} <out>)`,
    );
  return found;
}

/** A manifest's compute variant (one written before it was recorded: its backend's of then). */
const computeOf = (m: ShardManifest) => m.compute ?? legacyCompute(m.backend);
const show = (v: unknown) => (v === undefined ? 'none' : showValue(v));
const short = (hash: string) => `${hash.slice(0, 12)}…`;

/** The first way in which shard `b` ran another grid than shard `a` (null when they ran the same one). */
function difference(a: ShardManifest, b: ShardManifest): string | null {
  const keys = [...new Set([...Object.keys(a.config), ...Object.keys(b.config)])];
  const config = keys.find(
    (k) =>
      show((a.config as unknown as Record<string, unknown>)[k]) !==
      show((b.config as unknown as Record<string, unknown>)[k]),
  );
  if (config)
    return `${config} ${show((a.config as unknown as Record<string, unknown>)[config])} vs ${show((b.config as unknown as Record<string, unknown>)[config])}`;
  if (a.backend !== b.backend) return `backend ${a.backend} vs ${b.backend}`;
  if (computeOf(a) !== computeOf(b)) return `compute ${computeOf(a)} vs ${computeOf(b)}`;
  if (a.models.length !== b.models.length) return `${a.models.length} vs ${b.models.length} models`;
  for (const [i, ma] of a.models.entries()) {
    const mb = b.models[i];
    if (ma.model !== mb.model) return `model ${ma.model} vs ${mb.model}`;
    if (ma.fingerprint !== mb.fingerprint)
      return `model ${ma.model}: another model (weights, preprocessing or logits; fingerprint ${short(ma.fingerprint)} vs ${short(mb.fingerprint)})`;
    if (ma.data_sha256 !== mb.data_sha256 || ma.n !== mb.n)
      return `model ${ma.model}: other test images (sha256 ${short(ma.data_sha256)} vs ${short(mb.data_sha256)})`;
  }
  if (show(a.image) !== show(b.image)) return `images of ${show(a.image)} vs ${show(b.image)}`;
  if (a.cells.map((c) => c.key).join() !== b.cells.map((c) => c.key).join())
    return 'other cells (another version of robust?)';
  return null;
}

/** The one split the shards belong to, each shard once, all running the same grid. */
function checkShards(found: Found[]): {
  count: number;
  byIndex: Map<number, Found>;
  reference: Found;
} {
  const where = (f: Found) => `${shardLabel(f.manifest.shard)} (${f.dir})`;
  const counts = [...new Set(found.map((f) => f.manifest.shard.count))];
  if (counts.length > 1) {
    throw new RobustError(
      `the shards come from different splits (${counts
        .map(
          (n) =>
            `${n} workers: ${found
              .filter((f) => f.manifest.shard.count === n)
              .map(where)
              .join(', ')}`,
        )
        .join('; ')}): merge one split, or remove the other's folders`,
    );
  }
  const byIndex = new Map<number, Found>();
  const twice: string[] = [];
  for (const f of found) {
    const other = byIndex.get(f.manifest.shard.index);
    if (other) twice.push(`${shardLabel(f.manifest.shard)} in ${other.dir} and ${f.dir}`);
    else byIndex.set(f.manifest.shard.index, f);
  }
  if (twice.length)
    throw new RobustError(`duplicated shards: ${twice.join('; ')}: keep one copy of each`);
  const reference = [...byIndex.values()].sort(
    (a, b) => a.manifest.shard.index - b.manifest.shard.index,
  )[0];
  for (const f of byIndex.values()) {
    const why = f === reference ? null : difference(reference.manifest, f.manifest);
    if (why)
      throw new RobustError(
        `shards ${where(reference)} and ${where(f)} ran different grids: ${why}`,
      );
  }
  return { count: counts[0], byIndex, reference };
}

/** The one-process cell from its parts (in order of their images, which they cover exactly once). */
function mergeParts(
  c: ManifestCell,
  m: ShardModel,
  parts: ShardPart[],
  g: ComputedOn & { image: ShardManifest['image']; maxEps: number },
): CellResult {
  const n = m.n;
  const per = g.image.height * g.image.width * g.image.channels;
  const cleanCorrect = new Uint8Array(n);
  const robust = new Uint8Array(n);
  const outcomes = emptyOutcomes(n);
  let seconds = 0;
  let covered = 0;
  for (const p of [...parts].sort((a, b) => a.from - b.from)) {
    if (p.from !== covered)
      throw new Error(`internal error: the parts of ${c.key} do not cover its images in order`);
    covered = p.to;
    cleanCorrect.set(p.cleanCorrect, p.from);
    robust.set(p.robust, p.from);
    for (const k of Object.keys(outcomes) as (keyof ExampleOutcomes)[])
      outcomes[k].set(p.outcomes[k], p.from);
    seconds += p.seconds;
  }
  if (covered !== n)
    throw new Error(`internal error: the parts of ${c.key} cover ${covered} of ${n} images`);
  const tally = emptyTally();
  addOutcomes(tally, outcomes);
  const cell = cellResult(
    c.model,
    { name: c.attack, eps: c.eps, after: c.after },
    c.settings,
    statsOf(tally, cleanCorrect, robust, n, seconds),
    robust,
    g,
  );
  if (c.eps === g.maxEps) {
    const shown = galleryExamples(cleanCorrect);
    const images = new Float32Array(shown.length * per);
    const clean = new Uint8Array(shown.length * per);
    const classes = { true: [] as string[], predicted: [] as string[] };
    shown.forEach((e, k) => {
      const p = parts.find((q) => e >= q.from && e < q.to)!;
      const j = p.gallery.index.indexOf(e); // present: readPart checked that each part holds its first clean-correct examples
      images.set(p.gallery.images.subarray(j * per, (j + 1) * per), k * per);
      clean.set(p.gallery.clean.subarray(j * per, (j + 1) * per), k * per);
      classes.true.push(p.gallery.classes.true[j]);
      classes.predicted.push(p.gallery.classes.predicted[j]);
    });
    cell.gallery = galleryOf(
      { images: clean, labels: new Uint8Array(shown.length), count: shown.length, ...g.image },
      images,
      c.settings.norm,
      c.eps,
    );
    cell.gallery_classes = classes;
  }
  return cell;
}

/** `a, b, c` or `a, b, c and 4 more`. */
const some = (xs: string[], k = 3) =>
  xs.length <= k ? xs.join(', ') : `${xs.slice(0, k).join(', ')} and ${xs.length - k} more`;

/**
 * Merges the shards found in the results folders `outs`. Throws a one-line RobustError when the
 * shards ran different grids, when a shard appears twice, or (unless `partial`) when a cell's
 * images are not all covered; with `partial` the result holds the complete cells and says what is missing.
 */
export function mergeShards(outs: string[], o: { partial?: boolean } = {}): MergedGrid {
  const { count, byIndex, reference } = checkShards(findShards(outs));
  const ref = reference.manifest;
  let config: EvalConfig;
  try {
    config = parseEvalConfig(ref.config as unknown as Record<string, unknown>, 'config');
  } catch (e) {
    throw e instanceof RobustError
      ? new RobustError(`${manifestFile(reference.dir)}: damaged shard manifest (${e.message})`)
      : e;
  }
  const models = new Map(ref.models.map((m) => [m.model, m]));
  const maxEps = Math.max(...config.eps);
  const per = ref.image.height * ref.image.width * ref.image.channels;
  const missing = new Map<number, string[]>(); // shard index → cells it has not delivered
  const damaged: string[] = [];
  const blocked: string[] = [];
  const cells: MergedGrid['cells'] = [];
  let survivors: Uint8Array | undefined;
  let chainOk = true;
  for (const c of ref.cells) {
    const m = models.get(c.model);
    if (!m)
      throw new RobustError(
        `${manifestFile(reference.dir)}: damaged shard manifest (cell ${c.key} of a model it does not list)`,
      );
    if (c.stage === 0) [survivors, chainOk] = [undefined, true];
    const label = `${path.basename(c.model)} ${c.attack} eps ${formatEps(c.eps)}`;
    const parts: ShardPart[] = [];
    const lacking: number[] = [];
    const bad: string[] = [];
    for (let i = 0; chainOk && i < count; i++) {
      const shard = { index: i, count };
      const { from, to } = shardRange(m.n, config.batchSize, shard, c.chain);
      if (from === to) continue;
      const f = byIndex.get(i);
      const r = f
        ? readPart(partFile(f.dir, c.key), {
            key: c.key,
            shard,
            from,
            to,
            per,
            only: survivors?.subarray(from, to),
          })
        : {};
      if (r.part) parts.push(r.part);
      else lacking.push(i);
      if (r.damaged) bad.push(`${partFile(f!.dir, c.key)} (${r.damaged})`);
    }
    let cell: CellResult | undefined;
    if (chainOk && lacking.length === 0)
      cell = mergeParts(c, m, parts, {
        backend: ref.backend,
        compute: computeOf(ref),
        image: ref.image,
        maxEps,
      });
    else
      cell = outs
        .map(
          (out) =>
            readCell(path.join(out, 'cells', `${c.key}.json`), {
              model: c.model,
              attack: c.attack,
              eps: c.eps,
              n: m.n,
            }).cell,
        )
        .find(Boolean);
    if (cell) {
      cells.push({ key: c.key, cell });
      chainOk = true;
      if (config.cascade) survivors = decodeMask(cell.robust);
      continue;
    }
    if (!chainOk) blocked.push(label);
    for (const i of lacking) missing.set(i, [...(missing.get(i) ?? []), label]);
    damaged.push(...bad);
    chainOk = false;
  }
  const total = ref.cells.length;
  let gap: string | undefined;
  if (cells.length < total) {
    const shards = [...missing.keys()]
      .sort((a, b) => a - b)
      .map(
        (i) =>
          `shard ${i}/${count}${byIndex.has(i) ? '' : ' (never started: no manifest)'}: ${some(missing.get(i)!)}`,
      );
    gap = [
      `${total - cells.length} of ${total} cells missing`,
      shards.length ? `parts missing from ${shards.join('; ')}` : '',
      damaged.length ? `damaged parts: ${some(damaged, 2)}` : '',
      blocked.length ? `cascade steps after a missing one: ${some(blocked)}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    if (!o.partial)
      throw optionError(
        (n) =>
          `cannot merge: ${gap}. Run the missing shards (the same command resumes them), or merge with ${n('partial')}`,
      );
    if (cells.length === 0) throw new RobustError(`nothing to merge: ${gap}`);
  }
  const found = cells.map((c) => c.cell);
  const summaries: ModelSummary[] = ref.models.flatMap((m) => {
    const mine = found.filter((c) => c.model === m.model);
    if (mine.length === 0) return [];
    const {
      model,
      arch,
      params,
      input,
      labels,
      defense,
      randomized,
      fingerprint,
      data_sha256,
      n,
      checks,
    } = m;
    return [
      {
        model,
        arch,
        params,
        ...(input ? { input } : {}),
        ...(labels ? { labels } : {}),
        defense,
        randomized,
        fingerprint,
        data_sha256,
        n,
        clean_acc: mine[mine.length - 1].stats.clean_acc,
        checks,
      },
    ];
  });
  const result: GridResult = {
    config,
    backend: ref.backend,
    compute: computeOf(ref),
    computed_on: computedOn(found, { backend: ref.backend, compute: computeOf(ref) }),
    date: new Date().toISOString(),
    models: summaries,
    cells: found,
    worst: worstCases(summaries, found, config.attacks),
    ...(gap ? { incomplete: gap } : {}),
  };
  return { result, cells, ...(gap ? { missing: gap } : {}) };
}

/** Writes a merge into the results folder `out`: its cells into cells/ (a later one-process `robust eval` there reuses them) and the reports. */
export async function writeMerged(out: string, merged: MergedGrid): Promise<string[]> {
  const cellDir = path.join(out, 'cells');
  ensureDir(cellDir);
  for (const { key, cell } of merged.cells) writeCell(path.join(cellDir, `${key}.json`), cell);
  return writeReports(out, merged.result);
}
