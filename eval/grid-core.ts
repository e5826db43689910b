/**
 * The evaluation grid, without files (eval/grid.ts keeps its cells in a results folder; a page keeps them in memory): models × attacks × eps on the first `limit` test images. Every cell is one
 * attack run (AutoAttack protocol: only clean-correct images are attacked), saved as soon as it is
 * done, so a stopped grid resumes without redoing finished cells; a cell in progress saves its
 * state after every batch (eval/partial-cells.ts) and resumes at the batch it was in. Per model and
 * eps, the worst case over attacks counts an example as robust only if it survives every attack.
 */
import tf from '#tfjs';
import {
  ATTACK_NAMES,
  makeAttack,
  type Attack,
  type AttackInfo,
  type AttackOptions,
} from '../attacks/index.js';
import { check } from '../util/errors.js';
import { checkCount, LIMITS } from '../util/limits.js';
import { formatEps } from '../util/format.js';
import type { NormName } from '../attacks/norms.js';
import { imageSetFingerprint, take, type ImageSet } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { countParams } from '../models/zoo.js';
import { runAttack, type AttackStats, type RunPosition } from './attack-run.js';
import { adversarialGrid, quantize } from './gallery.js';
import { modelChecks, type ModelChecks } from './sanity.js';
import { sha256Hex, toBase64, fromBase64 } from '../util/platform.js';
import type { AttackRunState, KeepAdversarials } from './attack-state.js';
import type { PartialRead } from './partial-cells.js';
import type { BackendCheck } from './backend-check.js';
import {
  computeVariant,
  describeCompute,
  legacyCompute,
  type ComputedOn,
} from '../backend/variant.js';

export interface EvalConfig {
  models: string[];
  attacks: string[];
  eps: number[];
  norm: NormName;
  /** Per-attack overrides of the attacks' own defaults. */
  steps?: number;
  restarts?: number;
  eotSamples?: number;
  limit: number;
  batchSize: number;
  seed: number;
  data?: string;
  /** The named protocol the attacks come from (`autoattack`, `autoattack:plus`, …), recorded with the results. */
  preset?: string;
  /** AutoAttack's protocol: each attack runs only on the examples the attacks before it left robust. */
  cascade?: boolean;
}

/** What the grid needs of each model: the classifier users meet and its description. */
export interface EvalModel {
  path: string;
  name: string;
  /** The LayersModel behind the classifier, if any (for its metadata and size when arch/params are not given). */
  model?: tf.LayersModel;
  classifier: Classifier;
  /** Architecture and parameter count for the results (default: from `model`). */
  arch?: string;
  params?: number;
  /** How the model's inputs and logits are taken, when not as robust's own models ("inputs in [0,255]; logits: …"). */
  input?: string;
  /** 'predicted' when `test` carries the model's own predictions instead of true labels. */
  labels?: 'predicted';
  defense: string;
  test: ImageSet;
  /** Class names (label i = classes[i]) for the gallery's captions; indices are shown without them. */
  classes?: string[];
  /** Identifies the model as loaded (topology, weights, metadata: `modelFingerprint`), so cells of a changed model are not reused. */
  fingerprint: string;
}

export interface CellResult {
  model: string;
  attack: string;
  eps: number;
  settings: AttackInfo;
  stats: AttackStats;
  /** The backend the cell was computed on (a reused cell keeps its own, whatever the run's). */
  backend?: string;
  /** Its compute variant (backend/variant.ts), likewise; a cell without it reads as legacyCompute(backend). */
  compute?: string;
  /** In a cascade, the attacks run before this one: it attacked only the examples they left robust, and its robust accuracy is the cascade's so far. */
  after?: string[];
  /** Per-example robustness (1 = still correct after the attack), base64 of one byte per example. */
  robust: string;
  /** PNG grid of originals / perturbations / adversarials (base64), kept for the largest eps. */
  gallery?: string;
  /** The gallery's examples, column by column: true class and the model's class for the adversarial (names when known). */
  gallery_classes?: { true: string[]; predicted: string[] };
}

export interface ModelSummary {
  model: string;
  arch: string;
  params: number;
  defense: string;
  randomized: boolean;
  /** SHA-256 of the model as loaded and of the images + labels evaluated: what the cells are keyed on. */
  fingerprint: string;
  data_sha256: string;
  /** Preprocessing and logits of a model robust did not build (see EvalModel.input). */
  input?: string;
  labels?: 'predicted';
  n: number;
  clean_acc: number;
  checks: ModelChecks;
}

export interface WorstCase {
  model: string;
  eps: number;
  n: number;
  clean_acc: number;
  robust_acc: number;
  attacks: string[];
}

export interface GridResult {
  config: EvalConfig;
  backend: string;
  /** The run's compute variant (backend/variant.ts); absent in results written before it was recorded. */
  compute?: string;
  /** What the cells were computed on, each backend and variant with its number of cells (reused cells keep theirs). */
  computed_on?: { backend: string; compute: string; cells: number }[];
  date: string;
  models: ModelSummary[];
  cells: CellResult[];
  worst: WorstCase[];
  /** Set when the results lack cells (`robust merge --partial` with shards missing): what is missing. */
  incomplete?: string;
  /** The backend self-check that ran and passed before a non-reference backend computed the cells. */
  backend_check?: BackendCheck;
}

/** What one entry of the grid's attack list sets: `pgd`, `pgd:50` (steps), `apgd-ce:restarts=5:eot=20`, `apgd-t:targets=5`. */
interface AttackEntry {
  name: string;
  steps?: number;
  restarts?: number;
  eotSamples?: number;
  targetClasses?: number;
}

const ENTRY_KEYS: Record<string, keyof Omit<AttackEntry, 'name'>> = {
  steps: 'steps',
  restarts: 'restarts',
  eot: 'eotSamples',
  targets: 'targetClasses',
};
const ENTRY_MAX: Record<keyof Omit<AttackEntry, 'name'>, number> = {
  steps: LIMITS.steps,
  restarts: LIMITS.restarts,
  eotSamples: LIMITS.samples,
  targetClasses: LIMITS.classes,
};

/** An attack entry of the grid: a registry name, then optionally its own steps ("pgd:50") and key=value settings (restarts, eot, steps, targets). */
export function parseAttackEntry(entry: string): AttackEntry {
  const [name, ...parts] = entry.split(':');
  check(
    ATTACK_NAMES.includes(name),
    `unknown attack '${entry}' (one of: ${ATTACK_NAMES.join(', ')}; optionally name:steps and :restarts=N, :eot=N, :targets=N)`,
  );
  const out: AttackEntry = { name };
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    const [k, v] =
      eq >= 0 ? [part.slice(0, eq), part.slice(eq + 1)] : i === 0 ? ['steps', part] : ['', part];
    const key = ENTRY_KEYS[k];
    check(
      key && out[key] === undefined,
      `attack '${entry}': '${part}' is not one of steps (or a bare number first), restarts=N, eot=N, targets=N`,
    );
    check(
      key !== 'targetClasses' || name === 'apgd-t' || name === 'fab-t',
      `attack '${entry}': targets=N is for apgd-t and fab-t (the number of most likely wrong classes they target)`,
    );
    check(/^\d+$/.test(v), `attack '${entry}': ${k} must be a whole number, got '${v}'`);
    const n = Number(v);
    checkCount(`attack '${entry}': ${k}`, n, ENTRY_MAX[key]);
    out[key] = n;
  });
  return out;
}

/** `o` with an attack entry's own settings over it. */
export function withEntry(o: AttackOptions, e: Partial<AttackEntry>): AttackOptions {
  return {
    ...o,
    steps: e.steps ?? o.steps,
    restarts: e.restarts ?? o.restarts,
    eotSamples: e.eotSamples ?? o.eotSamples,
    ...(e.targetClasses ? { targetClasses: e.targetClasses } : {}),
  };
}

/** The options an entry's attack is made with at `eps`: the entry's own settings over the grid's. */
export function attackOptions(c: EvalConfig, eps: number, entry = ''): AttackOptions {
  return withEntry(
    {
      eps,
      norm: c.norm,
      steps: c.steps,
      restarts: c.restarts,
      eotSamples: c.eotSamples,
      seed: c.seed,
    },
    entry ? parseAttackEntry(entry) : {},
  );
}

/** Examples the report's gallery shows per model: the first clean-correct ones, at the largest eps. */
export const GALLERY_SIZE = 8;

/** Bumped when a change to the code would change a cell's numbers for the same inputs. (3: each batch's randomness derived from the seed and its index.) */
const CELL_FORMAT = 3;

/**
 * A cell's cache key: everything that changes its numbers — the model as loaded (its
 * fingerprint), the exact images and labels, the attack's full resolved settings (defaults
 * included) and the batch size (random starts are drawn per batch). In a cascade, also the key of
 * the cell before it, whose survivors it attacks.
 */
function cellKey(
  c: EvalConfig,
  m: EvalModel,
  dataSha256: string,
  attack: string,
  info: AttackInfo,
  after: string,
): string {
  const what = {
    format: CELL_FORMAT,
    model: m.path,
    fingerprint: m.fingerprint,
    data: dataSha256,
    attack,
    info,
    batchSize: c.batchSize,
    ...(after ? { after } : {}),
  };
  return sha256Hex(JSON.stringify(what)).slice(0, 32);
}

const encodeMask = (a: Uint8Array) => toBase64(a);
export const decodeMask = (s: string): Uint8Array => fromBase64(s);

/** One cell of the grid as planned: where it stands, its attack and its key. */
interface PlannedCell {
  name: string;
  eps: number;
  attack: Attack;
  key: string;
  /** In a cascade, the attacks before this one. */
  after?: string[];
  /**
   * The run of cells an example's outcome passes along: a cascade's attacks at one model and eps
   * (each attacks the survivors of the one before), else the cell alone. Numbered over the grid.
   */
  chain: number;
  /** Position in its chain (0: the first attack of a cascade; always 0 without one). */
  stage: number;
}

/** A model's part of the grid: the images it is evaluated on and its cells, in the order they run. */
interface PlannedModel {
  model: EvalModel;
  test: ImageSet;
  dataSha256: string;
  cells: PlannedCell[];
}

/** The grid's cells in the order they run: models, then eps, then attacks. */
export function planGrid(config: EvalConfig, models: EvalModel[]): PlannedModel[] {
  let chain = 0;
  return models.map((m) => {
    const test = take(m.test, config.limit);
    const dataSha256 = imageSetFingerprint(test);
    const cells: PlannedCell[] = [];
    for (const eps of config.eps) {
      let previousKey = '';
      const before: string[] = [];
      for (const [stage, name] of config.attacks.entries()) {
        const attack = makeAttack(
          parseAttackEntry(name).name,
          m.classifier,
          attackOptions(config, eps, name),
        );
        const key = cellKey(config, m, dataSha256, name, attack.info, previousKey);
        cells.push({
          name,
          eps,
          attack,
          key,
          ...(config.cascade ? { after: [...before] } : {}),
          chain: config.cascade ? chain : chain++,
          stage: config.cascade ? stage : 0,
        });
        if (config.cascade) {
          previousKey = key;
          before.push(name);
        }
      }
      if (config.cascade) chain++;
    }
    return { model: m, test, dataSha256, cells };
  });
}

/** A finished cell as runGrid writes it (the field order is the file's: a merged cell is byte for byte a one-process one, times aside). */
export function cellResult(
  model: string,
  c: Pick<PlannedCell, 'name' | 'eps' | 'after'>,
  settings: AttackInfo,
  stats: AttackStats,
  robust: Uint8Array,
  on: ComputedOn,
): CellResult {
  return {
    model,
    attack: c.name,
    eps: c.eps,
    settings,
    stats,
    robust: encodeMask(robust),
    backend: on.backend,
    compute: on.compute,
    ...(c.after ? { after: c.after } : {}),
  };
}

/**
 * The gallery PNG of a cell: the first GALLERY_SIZE clean-correct examples, from `clean` (their
 * 8-bit images) and `adversarial` (their rows as the run kept them), both holding only those rows.
 */
export function galleryOf(
  clean: ImageSet,
  adversarial: Float32Array,
  norm: NormName,
  eps: number,
): string {
  const shown = Array.from({ length: clean.count }, (_, i) => i);
  return toBase64(
    adversarialGrid(
      clean,
      quantize(adversarial, clean.images, norm, eps, clean.height * clean.width * clean.channels),
      shown,
      2,
    ),
  );
}

/**
 * The true and predicted classes of the gallery's examples: labels of `shown` in `set`, and the
 * model's class (inference mode) for their adversarial images as the attack left them (before the
 * 8-bit rounding of the picture), so a column is robust exactly when the two agree.
 */
export function galleryClasses(
  classifier: Classifier,
  set: ImageSet,
  shown: number[],
  adversarial: Float32Array,
  classes?: string[],
): { true: string[]; predicted: string[] } {
  const name = (k: number) => classes?.[k] ?? String(k);
  if (shown.length === 0) return { true: [], predicted: [] };
  const predicted = tf.tidy(() =>
    classifier
      .logits(
        tf.tensor4d(adversarial, [shown.length, set.height, set.width, set.channels]),
        'inference',
      )
      .argMax(1)
      .dataSync(),
  );
  return {
    true: shown.map((n) => name(set.labels[n])),
    predicted: Array.from(predicted, name),
  };
}

/** The first GALLERY_SIZE clean-correct examples of `cleanCorrect` (from example `from` on, as global indices). */
export function galleryExamples(cleanCorrect: Uint8Array, from = 0): number[] {
  const shown: number[] = [];
  for (let i = 0; i < cleanCorrect.length && shown.length < GALLERY_SIZE; i++)
    if (cleanCorrect[i]) shown.push(from + i);
  return shown;
}

/** The rows `which` of an NHWC set (pixels and labels). */
export function rowsOf(set: ImageSet, which: number[]): ImageSet {
  const per = set.height * set.width * set.channels;
  const images = new Uint8Array(which.length * per);
  which.forEach((n, k) => images.set(set.images.subarray(n * per, (n + 1) * per), k * per));
  return {
    ...set,
    images,
    labels: Uint8Array.from(which, (n) => set.labels[n]),
    count: which.length,
  };
}

/** Rows `which` of float images with `per` values each. */
export function floatRows(images: Float32Array, per: number, which: number[]): Float32Array {
  const out = new Float32Array(which.length * per);
  which.forEach((n, k) => out.set(images.subarray(n * per, (n + 1) * per), k * per));
  return out;
}

/** A model's summary in the results (`clean`: its clean accuracy, from its cells). */
export function modelSummary(p: PlannedModel, checks: ModelChecks, clean: number): ModelSummary {
  const m = p.model;
  const meta = (m.model?.getUserDefinedMetadata() as { robust?: { model?: string } } | undefined)
    ?.robust;
  return {
    model: m.path,
    arch: m.arch ?? meta?.model ?? m.name,
    params: m.params ?? (m.model ? countParams(m.model) : 0),
    ...(m.input ? { input: m.input } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    defense: m.defense,
    randomized: m.classifier.randomized,
    fingerprint: m.fingerprint,
    data_sha256: p.dataSha256,
    n: p.test.count,
    clean_acc: clean,
    checks,
  };
}

/** Worst case over the attacks run at each eps for each model. */
export function worstCases(
  models: ModelSummary[],
  cells: CellResult[],
  attacks: string[],
): WorstCase[] {
  const out: WorstCase[] = [];
  for (const m of models) {
    const mine = cells.filter((c) => c.model === m.model);
    for (const eps of [...new Set(mine.map((c) => c.eps))].sort((a, b) => a - b)) {
      const atEps = mine.filter((c) => c.eps === eps);
      // over a part of the attacks (a stopped grid, a partial merge) the worst case would overstate robustness: none then
      if (!attacks.every((a) => atEps.some((c) => c.attack === a))) continue;
      const masks = atEps.map((c) => decodeMask(c.robust));
      const n = masks[0].length;
      let robust = 0;
      for (let i = 0; i < n; i++) if (masks.every((k) => k[i])) robust++;
      out.push({
        model: m.model,
        eps,
        n,
        clean_acc: m.clean_acc,
        robust_acc: robust / n,
        attacks: atEps.map((c) => c.attack),
      });
    }
  }
  return out;
}

/**
 * Where a grid keeps its finished cells and the state of the cell in progress, by cell key: the
 * results folder's cells/ (eval/grid.ts), or memory (a page). `where` names a key's place in warnings.
 */
export interface CellStore {
  readCell(
    key: string,
    expect: { model: string; attack: string; eps: number; n: number },
  ): { cell?: CellResult; damaged?: string };
  writeCell(key: string, cell: CellResult): void;
  readPartial(key: string, expect: PartialExpect): PartialRead;
  writePartial(key: string, state: AttackRunState, on: ComputedOn): void;
  removePartial(key: string): void;
  where(key: string, partial?: boolean): string;
}

/** What a saved partial state must match to be continued: the cell, its images and how it runs. */
export interface PartialExpect {
  key: string;
  set: ImageSet;
  backend: string;
  compute: string;
  batchSize: number;
  keepAdversarials: KeepAdversarials;
  only?: Uint8Array;
}

/** Cells in memory: a page's grid, stopped and continued in the same page. */
export function memoryCellStore(): CellStore {
  const cells = new Map<string, CellResult>();
  const partials = new Map<string, AttackRunState>();
  return {
    readCell: (key) => ({ cell: cells.get(key) }),
    writeCell: (key, cell) => void cells.set(key, cell),
    readPartial: (key) => ({ state: partials.get(key) }),
    writePartial: (key, state) => void partials.set(key, structuredClone(state)),
    removePartial: (key) => void partials.delete(key),
    where: (key, partial) => `cell ${key}${partial ? ' (partial)' : ''}`,
  };
}

export interface GridRunOptions {
  backend: string;
  /** The backend's compute variant; default: computeVariant(), what runs now. */
  compute?: string;
  quiet?: boolean;
  shouldStop?: () => boolean;
  onCell?: (cell: CellResult, reused: boolean) => void;
  /** After every batch of a cell: images done of the cell's total (a page's progress line). */
  onBatch?: (
    cell: { model: string; attack: string; eps: number },
    seen: number,
    total: number,
  ) => void;
  /** During a cell's batch, after each of the attack's steps: where the batch stands (a page's progress line; the numbers are the same without it). */
  onProgress?: (cell: { model: string; attack: string; eps: number }, p: RunPosition) => void;
  /** One-line warnings (a damaged cell or partial cell file that is recomputed); default: standard error. */
  warn?: (message: string) => void;
  /** The backend self-check passed before the run (eval/backend-check.ts), recorded in the results. */
  backendCheck?: BackendCheck;
}

/** Runs (or resumes) the grid with its cells in `store`; returns what is done so far (all of it unless stopped). */
export async function runGridIn(
  store: CellStore,
  config: EvalConfig,
  models: EvalModel[],
  o: GridRunOptions,
): Promise<{ result: GridResult; complete: boolean }> {
  const cells: CellResult[] = [];
  const summaries: ModelSummary[] = [];
  const maxEps = Math.max(...config.eps);
  const warn = o.warn ?? console.error;
  const on: ComputedOn = { backend: o.backend, compute: o.compute ?? computeVariant() };
  let complete = true;
  outer: for (const p of planGrid(config, models)) {
    const { model: m, test } = p;
    const checks = modelChecks(m.classifier, test);
    let clean = -1;
    // cascade: each attack runs on the examples every attack before it left robust
    let survivors: Uint8Array | undefined;
    for (const c of p.cells) {
      const { name, eps, attack, key } = c;
      if (c.stage === 0) survivors = undefined;
      const saved = store.readCell(key, { model: m.path, attack: name, eps, n: test.count });
      if (saved.damaged)
        warn(`warning: ${store.where(key)}: damaged cell (${saved.damaged}); computing it again`);
      if (saved.cell) {
        store.removePartial(key); // left by a kill between writing the cell and removing it
        const cell = saved.cell;
        const cellOn = describeCompute(
          cell.backend ?? on.backend,
          cell.compute ?? legacyCompute(cell.backend ?? on.backend),
        );
        // reused, not recomputed: its last bits are another variant's, and the results say so (computed_on)
        if (cellOn !== describeCompute(on.backend, on.compute))
          warn(
            `note: ${store.where(key)}: reused as computed on ${cellOn}, not on this run's ${describeCompute(on.backend, on.compute)}`,
          );
        cells.push(cell);
        clean = cell.stats.clean_acc;
        if (config.cascade) survivors = decodeMask(cell.robust);
        o.onCell?.(cell, true);
        continue;
      }
      if (o.shouldStop?.()) {
        complete = false;
        break outer;
      }
      // Every cell keeps the gallery's images (not only the largest eps's), so its partial does not depend on the eps list.
      const runOptions = {
        batchSize: config.batchSize,
        keepAdversarials: { firstCorrect: GALLERY_SIZE },
        only: survivors,
      };
      const resumed = store.readPartial(key, { key, set: test, ...on, ...runOptions });
      if (resumed.damaged)
        warn(
          `warning: ${store.where(key, true)}: damaged partial cell (${resumed.damaged}); starting the cell from its first batch`,
        );
      if (resumed.computedOn)
        warn(
          `note: ${store.where(key, true)}: ${resumed.computedOn}; starting the cell from its first batch (batches computed differently are not mixed in one cell)`,
        );
      const run = await runAttack(m.classifier, attack, test, {
        ...runOptions,
        quiet: o.quiet,
        seed: config.seed,
        label: `${m.name} ${name} eps ${formatEps(eps)}`,
        shouldStop: o.shouldStop,
        resume: resumed.state,
        onBatch: (state) => {
          if (state.seen < test.count) store.writePartial(key, state, on); // the last batch's state is the cell itself
          o.onBatch?.({ model: m.path, attack: name, eps }, state.seen, test.count);
        },
        ...(o.onProgress && {
          onProgress: (p: RunPosition) => o.onProgress!({ model: m.path, attack: name, eps }, p),
        }),
      });
      if (run.stats.n < test.count) {
        complete = false; // stopped mid-cell: its partial continues it on resume
        break outer;
      }
      const cell = cellResult(m.path, c, attack.info, run.stats, run.robust, on);
      if (config.cascade) survivors = run.robust;
      if (eps === maxEps) {
        const shown = galleryExamples(run.cleanCorrect);
        const adversarial = floatRows(
          run.adversarial!,
          test.height * test.width * test.channels,
          shown,
        );
        cell.gallery = galleryOf(rowsOf(test, shown), adversarial, attack.info.norm, eps);
        cell.gallery_classes = galleryClasses(m.classifier, test, shown, adversarial, m.classes);
      }
      store.writeCell(key, cell);
      store.removePartial(key);
      cells.push(cell);
      clean = run.stats.clean_acc;
      o.onCell?.(cell, false);
    }
    summaries.push(modelSummary(p, checks, clean));
  }
  const result: GridResult = {
    config,
    backend: on.backend,
    compute: on.compute,
    computed_on: computedOn(cells, on),
    date: new Date().toISOString(),
    models: summaries,
    cells,
    worst: worstCases(summaries, cells, config.attacks),
    ...(o.backendCheck ? { backend_check: o.backendCheck } : {}),
  };
  return { result, complete };
}

/** The distinct backends and variants a run's cells were computed on, with their counts. */
export function computedOn(
  cells: CellResult[],
  on: ComputedOn,
): { backend: string; compute: string; cells: number }[] {
  const seen = new Map<string, { backend: string; compute: string; cells: number }>();
  for (const c of cells) {
    const backend = c.backend ?? on.backend;
    const compute = c.compute ?? legacyCompute(backend);
    const k = `${backend}\n${compute}`;
    const e = seen.get(k) ?? { backend, compute, cells: 0 };
    e.cells++;
    seen.set(k, e);
  }
  return [...seen.values()];
}
