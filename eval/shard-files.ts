/**
 * What a worker of a sharded grid writes into the shared results folder, all of it under its own
 * folder `<out>/shards/<i>-of-<n>/` (so no two workers ever write or clean up the same folder):
 * `manifest.json` — the grid it runs and what it runs on (settings, model and data fingerprints,
 * backend) — and per cell a part `<key>.part.json` holding what `robust merge` needs to rebuild the
 * one-process cell exactly: the masks and per-example outcomes of its images, the gallery's
 * candidate images, seconds. Digest-checked and written atomically, like cells.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { AttackInfo } from '../attacks/index.js';
import {
  fieldProblem,
  int,
  leaf,
  nested,
  num,
  oneOf,
  optional,
  str,
  strings,
  matching,
  object,
  type Shape,
} from '../util/fields.js';
import { outcomesProblem, type ExampleOutcomes } from './attack-state.js';
import { readDigested, writeDigested } from './cells.js';
import { galleryExamples, type EvalConfig, type ModelSummary } from './grid.js';
import {
  b64,
  bytes,
  decodeOutcomes,
  encodeOutcomes,
  floats,
  OUTCOMES,
  type SavedOutcomes,
} from './partial-cells.js';
import { base64, CHECKS, SETTINGS } from './result-shape.js';
import { MAX_SHARDS, shardName, type Shard } from './shard-plan.js';

const MANIFEST_FORMAT = 1;
const PART_FORMAT = 2; // 2: the gallery's true and predicted classes

export const SHARDS_DIR = 'shards';
export const shardDir = (out: string, s: Shard) => path.join(out, SHARDS_DIR, shardName(s));
export const manifestFile = (dir: string) => path.join(dir, 'manifest.json');
export const partFile = (dir: string, key: string) => path.join(dir, `${key}.part.json`);
/** A shard folder's name: `<i>-of-<n>`. */
export const SHARD_DIR_NAME = /^(\d{1,15})-of-(\d{1,15})$/;

/** The key a shard's partial cell is saved under: its cell's, shard and images, so no other shard's or split's partial is ever taken for it. */
export const partialKey = (key: string, s: Shard, from: number, to: number) =>
  crypto
    .createHash('sha256')
    .update(`${key}/${shardName(s)}/${from}-${to}`)
    .digest('hex')
    .slice(0, 32);

/** A cell of the grid as a manifest lists it: everything its merged result carries besides the numbers. */
export interface ManifestCell {
  key: string;
  model: string;
  attack: string;
  eps: number;
  settings: AttackInfo;
  after?: string[];
  chain: number;
  stage: number;
}

/** A model's summary without its clean accuracy (which comes from the cells). */
export type ShardModel = Omit<ModelSummary, 'clean_acc'>;

export interface ShardManifest {
  shard: Shard;
  config: EvalConfig;
  backend: string;
  /** The backend's compute variant; absent in manifests written before it was recorded (see legacyCompute). */
  compute?: string;
  /** The evaluated images' shape (the merge draws galleries without the data). */
  image: { height: number; width: number; channels: number };
  models: ShardModel[];
  cells: ManifestCell[];
}

const SHARD: Shape = { index: int(0, MAX_SHARDS - 1), count: int(1, MAX_SHARDS) };
const KEY = matching(/^[0-9a-f]{32}$/, 'a cell key');
const list = (shape: Shape) =>
  leaf(
    (v) => Array.isArray(v) && v.every((x) => fieldProblem(x, shape) === null),
    'a list of well-formed entries',
  );
const SHARD_MODEL: Shape = {
  model: str,
  arch: str,
  params: int(0),
  defense: str,
  randomized: leaf((v) => typeof v === 'boolean', 'true or false'),
  fingerprint: str,
  data_sha256: str,
  n: int(1),
  checks: nested(CHECKS),
};
const MANIFEST_CELL: Shape = {
  key: KEY,
  model: str,
  attack: str,
  eps: num(0),
  settings: nested(SETTINGS),
  after: optional(strings),
  chain: int(0),
  stage: int(0),
};
const MANIFEST: Shape = {
  format: oneOf(MANIFEST_FORMAT),
  shard: nested(SHARD),
  config: object,
  backend: str,
  compute: optional(str),
  image: nested({ height: int(1), width: int(1), channels: int(1) }),
  models: list(SHARD_MODEL),
  cells: list(MANIFEST_CELL),
};

export function writeManifest(dir: string, m: ShardManifest): void {
  writeDigested(manifestFile(dir), { format: MANIFEST_FORMAT, ...m });
}

/** A manifest lists every cell of the grid: a few hundred bytes each. */
const MAX_MANIFEST_BYTES = 64 * 2 ** 20;

/** The manifest in `file` (its config still to be checked by the caller), `damaged` (why) when it cannot be trusted, neither when there is none. */
export function readManifest(file: string): { manifest?: ShardManifest; damaged?: string } {
  const r = readDigested(file, { maxBytes: MAX_MANIFEST_BYTES, what: 'shard manifest' });
  if (!r.content) return r;
  const bad = fieldProblem(r.content, MANIFEST);
  if (bad) return { damaged: bad };
  if ((r.content.shard as Shard).index >= (r.content.shard as Shard).count)
    return { damaged: 'shard.index is not below shard.count' };
  const { format: _f, ...manifest } = r.content;
  return { manifest: manifest as unknown as ShardManifest };
}

/** One worker's share of one cell: examples [from, to) of the model's evaluated images. */
export interface ShardPart {
  key: string;
  shard: Shard;
  from: number;
  to: number;
  seconds: number;
  cleanCorrect: Uint8Array;
  robust: Uint8Array;
  outcomes: ExampleOutcomes;
  /**
   * The share's first GALLERY_SIZE clean-correct examples (global indices) with their rows as the
   * run kept them and their 8-bit images: the cell's gallery shows the first GALLERY_SIZE over all
   * images, each of which is among its own share's first GALLERY_SIZE.
   */
  gallery: {
    index: number[];
    images: Float32Array;
    clean: Uint8Array;
    /** True and predicted class (names when known) of each gallery example, as `galleryClasses` gives them. */
    classes: { true: string[]; predicted: string[] };
  };
}

const stringList = leaf(
  (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
  'a list of strings',
);

const PART: Shape = {
  format: oneOf(PART_FORMAT),
  key: KEY,
  shard: nested(SHARD),
  from: int(0),
  to: int(0),
  seconds: num(0),
  cleanCorrect: base64,
  robust: base64,
  outcomes: nested(OUTCOMES),
  gallery: nested({
    index: leaf((v) => Array.isArray(v) && v.every(Number.isInteger), 'a list of integers'),
    images: base64,
    clean: base64,
    classes: nested({ true: stringList, predicted: stringList }),
  }),
};

export function writePart(file: string, p: ShardPart): void {
  writeDigested(file, {
    format: PART_FORMAT,
    key: p.key,
    shard: p.shard,
    from: p.from,
    to: p.to,
    seconds: p.seconds,
    cleanCorrect: b64(p.cleanCorrect),
    robust: b64(p.robust),
    outcomes: encodeOutcomes(p.outcomes),
    gallery: {
      index: p.gallery.index,
      images: b64(p.gallery.images),
      clean: b64(p.gallery.clean),
      classes: p.gallery.classes,
    },
  });
}

interface PartExpectation {
  key: string;
  shard: Shard;
  from: number;
  to: number;
  /** Values per image (height × width × channels). */
  per: number;
  /** In a cascade, the examples of [from, to) this attack ran on: the ones the attacks before it left robust. */
  only?: Uint8Array;
}

type SavedPart = {
  key: string;
  shard: Shard;
  from: number;
  to: number;
  seconds: number;
  cleanCorrect: string;
  robust: string;
  outcomes: SavedOutcomes;
  gallery: {
    index: number[];
    images: string;
    clean: string;
    classes: { true: string[]; predicted: string[] };
  };
};

/**
 * Reads a part: `part` when it is sound and is exactly the expected share of the expected cell,
 * `damaged` (why) when it exists but cannot be trusted, neither when there is none.
 */
export function readPart(file: string, e: PartExpectation): { part?: ShardPart; damaged?: string } {
  const n = e.to - e.from;
  const maxBytes = 64 * 1024 + Math.ceil(((n * 17 + 8 * 5 * e.per) * 4) / 3);
  const r = readDigested(file, { maxBytes, what: 'shard part file' });
  if (!r.content) return r;
  const bad = fieldProblem(r.content, PART);
  if (bad) return { damaged: bad };
  const s = r.content as unknown as SavedPart;
  if (s.key !== e.key) return { damaged: 'it belongs to another cell' };
  if (
    s.shard.index !== e.shard.index ||
    s.shard.count !== e.shard.count ||
    s.from !== e.from ||
    s.to !== e.to
  )
    return {
      damaged: `it holds examples ${s.from}–${s.to} of shard ${shardName(s.shard)}, not ${e.from}–${e.to} of ${shardName(e.shard)}`,
    };
  const cleanCorrect = bytes(s.cleanCorrect);
  const robust = bytes(s.robust);
  if (cleanCorrect.length !== n || robust.length !== n)
    return {
      damaged: `its masks have ${cleanCorrect.length} and ${robust.length} entries, not ${n}`,
    };
  for (let i = 0; i < n; i++)
    if (cleanCorrect[i] > 1 || robust[i] > cleanCorrect[i] || (e.only && robust[i] > e.only[i]))
      return {
        damaged: `example ${e.from + i} is robust without being clean-correct (or attacked)`,
      };
  const outcomes = decodeOutcomes(s.outcomes);
  if (!outcomes) return { damaged: 'its perturbation sizes are not whole float32 values' };
  const why = outcomesProblem(outcomes, cleanCorrect, robust, e.only);
  if (why) return { damaged: why };
  const g = s.gallery;
  const want = galleryExamples(cleanCorrect, e.from);
  if (g.index.join() !== want.join())
    return {
      damaged: `its gallery holds examples ${g.index.join(', ') || 'none'}, not its first clean-correct ones (${want.join(', ') || 'none'})`,
    };
  const images = floats(g.images);
  const clean = bytes(g.clean);
  if (!images || images.length !== want.length * e.per || clean.length !== want.length * e.per)
    return { damaged: `its gallery images are not ${want.length} of ${e.per} values` };
  if (g.classes.true.length !== want.length || g.classes.predicted.length !== want.length)
    return { damaged: `its gallery classes are not ${want.length} pairs` };
  return {
    part: {
      key: s.key,
      shard: s.shard,
      from: s.from,
      to: s.to,
      seconds: s.seconds,
      cleanCorrect,
      robust,
      outcomes,
      gallery: { index: g.index, images, clean, classes: g.classes },
    },
  };
}
