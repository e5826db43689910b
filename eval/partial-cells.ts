/**
 * Partial cells (results/cells/<key>.partial.json): where an unfinished cell stood after its last
 * finished batch, so a killed grid continues the cell at that batch instead of from the start (an
 * AutoAttack cell on 1000 CIFAR images takes 30–60 minutes). Written atomically after each batch,
 * digest-checked like cells, trusted only by the cell whose key it names, removed once the cell is
 * written. Adversarial images are kept only as far as the gallery needs them, so the file stays
 * small (8 CIFAR images: 98 KB) however many images the cell covers.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ImageSet } from '../data/dataset.js';
import {
  fieldProblem,
  int,
  nested,
  num,
  optional,
  leaf,
  matching,
  oneOf,
  str,
  type Shape,
} from '../util/fields.js';
import { readDigested, writeDigested } from './cells.js';
import {
  OUTCOME_FLAGS,
  OUTCOME_SIZES,
  stateProblem,
  type AttackRunState,
  type ExampleOutcomes,
  type KeepAdversarials,
} from './attack-state.js';
import { base64 } from './result-shape.js';
import { describeCompute, legacyCompute, type ComputedOn } from '../backend/variant.js';

/** Bumped when the saved state's meaning changes: an older partial is then not trusted. (2: no random stream states, per-example outcomes.) */
const PARTIAL_FORMAT = 2;

export const partialFile = (cellDir: string, key: string) =>
  path.join(cellDir, `${key}.partial.json`);
export const isPartialFile = (name: string) => name.endsWith('.partial.json');

export const b64 = (a: Uint8Array | Int32Array | Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
/** Bytes of base64 `s` in a fresh (aligned) buffer. */
export const bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'base64'));
/** float32 values of base64 `s`; null when it does not hold whole ones. */
export function floats(s: string): Float32Array | null {
  const b = bytes(s);
  return b.length % 4 === 0 ? new Float32Array(b.buffer) : null;
}

export const OUTCOMES: Shape = Object.fromEntries(
  [...OUTCOME_FLAGS, ...OUTCOME_SIZES].map((k) => [k, base64]),
);
export type SavedOutcomes = Record<keyof ExampleOutcomes, string>;

export function encodeOutcomes(o: ExampleOutcomes): SavedOutcomes {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, b64(v)])) as SavedOutcomes;
}

/** The outcomes saved in `s`; null when a size array does not hold whole float32 values. */
export function decodeOutcomes(s: SavedOutcomes): ExampleOutcomes | null {
  const sizes = OUTCOME_SIZES.map((k) => floats(s[k]));
  if (sizes.some((v) => v === null)) return null;
  const [linf, l2, l1] = sizes as Float32Array[];
  return {
    perturbed: bytes(s.perturbed),
    counted: bytes(s.counted),
    success: bytes(s.success),
    linf,
    l2,
    l1,
  };
}

const TALLY: Shape = {
  perturbed: int(0),
  attacked: int(0),
  successes: int(0),
  linfSum: num(0),
  linfMax: num(0),
  l2Sum: num(0),
  l2Max: num(0),
  l1Sum: num(0),
  l1Max: num(0),
};
const STATE: Shape = {
  seen: int(0),
  tally: nested(TALLY),
  seconds: num(0),
  cleanCorrect: base64,
  robust: base64,
  outcomes: optional(nested(OUTCOMES)),
  adversarial: optional(
    nested({
      firstCorrect: optional(int(1)),
      index: leaf((v) => Array.isArray(v) && v.every(Number.isInteger), 'a list of integers'),
      images: base64,
    }),
  ),
};
const PARTIAL: Shape = {
  format: oneOf(PARTIAL_FORMAT),
  key: matching(/^[0-9a-f]{32}$/, 'a cell key'),
  backend: str,
  compute: optional(str), // absent in partials written before it was recorded: see legacyCompute
  state: nested(STATE),
};

/** Saves a cell's state after a batch; `on` is what its batches ran on (a resume on another backend or variant would mix them). */
export function writePartial(file: string, key: string, s: AttackRunState, on: ComputedOn): void {
  const a = s.adversarial;
  const state = {
    ...s,
    cleanCorrect: b64(s.cleanCorrect),
    robust: b64(s.robust),
    ...(s.outcomes && { outcomes: encodeOutcomes(s.outcomes) }),
    ...(a && { adversarial: { ...a, index: Array.from(a.index), images: b64(a.images) } }),
  };
  writeDigested(file, {
    format: PARTIAL_FORMAT,
    key,
    backend: on.backend,
    compute: on.compute,
    state,
  });
}

type Saved = {
  seen: number;
  tally: AttackRunState['tally'];
  seconds: number;
  cleanCorrect: string;
  robust: string;
  outcomes?: SavedOutcomes;
  adversarial?: { firstCorrect?: number; index: number[]; images: string };
};

/** The state in a checked partial; null when its images or sizes are not whole float32 values. */
function decode(s: Saved): AttackRunState | null {
  const a = s.adversarial;
  const images = a && floats(a.images);
  const outcomes = s.outcomes && decodeOutcomes(s.outcomes);
  if (images === null || outcomes === null) return null;
  return {
    ...s,
    cleanCorrect: bytes(s.cleanCorrect),
    robust: bytes(s.robust),
    outcomes,
    adversarial: a && {
      ...(a.firstCorrect !== undefined && { firstCorrect: a.firstCorrect }),
      index: Int32Array.from(a.index),
      images: images!,
    },
  };
}

interface PartialExpectation {
  key: string;
  /** The backend of this run: a partial computed on another is not continued (backends differ in the last bits). */
  backend: string;
  /** Its compute variant: likewise (kernels, Winograd variant and threads differ in the last bits). */
  compute: string;
  set: ImageSet;
  batchSize: number;
  keepAdversarials?: KeepAdversarials;
  only?: Uint8Array;
  outcomes?: boolean;
}

/**
 * What a partial cell file holds for this run: `state` when it is sound and continues exactly this
 * cell; `damaged` (why) when it cannot be trusted; `computedOn` (how) when it is sound but its
 * batches ran on another backend or compute variant, which this run must not mix with its own.
 * The cell starts from its first batch in both cases; neither is set when there is no file.
 */
export interface PartialRead {
  state?: AttackRunState;
  damaged?: string;
  computedOn?: string;
}

/** Reads a partial cell (see PartialRead). */
export function readPartial(file: string, e: PartialExpectation): PartialRead {
  const per = e.set.height * e.set.width * e.set.channels;
  const k = e.keepAdversarials;
  const keptMax = k === true ? e.set.count : k ? Math.min(k.firstCorrect, e.set.count) : 0;
  const maxBytes =
    64 * 1024 +
    4 * e.set.count +
    (e.outcomes ? 24 * e.set.count : 0) +
    Math.ceil((keptMax * (4 * per + 16) * 4) / 3);
  const r = readDigested(file, { maxBytes, what: 'partial cell file' });
  if (!r.content) return r;
  const bad = fieldProblem(r.content, PARTIAL);
  if (bad) return { damaged: bad };
  if (r.content.key !== e.key) return { damaged: 'it belongs to another cell' };
  // Sound as far as its own fields go; its state is checked against this cell even when it is not
  // continued, so a damaged file from another backend is still called damaged.
  const state = decode(r.content.state as Saved);
  if (!state) return { damaged: 'its images or perturbation sizes are not whole float32 values' };
  const why = stateProblem(state, e.set, e);
  if (why) return { damaged: why };
  if (r.content.backend !== e.backend)
    return {
      computedOn: `its batches ran on ${JSON.stringify(r.content.backend)}, this run is on ${JSON.stringify(e.backend)}`,
    };
  const compute = (r.content.compute as string | undefined) ?? legacyCompute(e.backend);
  if (compute !== e.compute)
    return {
      computedOn: `its batches ran on ${describeCompute(e.backend, compute)}, this run is on ${describeCompute(e.backend, e.compute)}`,
    };
  return { state };
}

/** Removes a finished cell's partial. Best effort: one left behind is never used, since the cell file comes first. */
export function removePartial(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // a read-only folder: the next run that can write removes it
  }
}
