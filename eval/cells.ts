/**
 * Cell files of the grid (results/cells/<key>.json). Each carries a digest of its content, so a
 * file that was cut short, damaged on disk or edited is recomputed instead of trusted: a shape
 * check alone would pass a flipped digit in an accuracy.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { writeFileAtomic } from '../util/atomic.js';
import { RobustError } from '../util/errors.js';
import { readRegularFile } from '../util/read-file.js';
import { cellProblem } from './result-shape.js';
import type { CellResult } from './grid.js';

/** Why a file without any digest is not trusted: robust before 2026-12-01 wrote cells without one. */
export const NO_DIGEST =
  'it has no digest: written by a robust older than digests, or not by robust';

const digestOf = (content: object) =>
  crypto.createHash('sha256').update(JSON.stringify(content)).digest('hex');

/** Writes `content` with its digest, atomically (cells and partial cells). */
export function writeDigested(file: string, content: object): void {
  writeFileAtomic(file, JSON.stringify({ ...content, digest: digestOf(content) }));
}

export function writeCell(file: string, cell: CellResult): void {
  writeDigested(file, cell);
}

/**
 * The object a digest-checked file holds (without its digest), or why it cannot be trusted:
 * unreadable, not a regular file of sane size (a FIFO would block, /dev/zero never end), not a
 * JSON object, or content that does not match its digest. Neither when there is no file.
 */
export function readDigested(
  file: string,
  limits: { maxBytes: number; what: string },
): { content?: Record<string, unknown>; damaged?: string } {
  if (!fs.existsSync(file)) return {};
  let text: string;
  try {
    text = readRegularFile(file, limits).toString('utf8');
  } catch (e) {
    if (!(e instanceof RobustError)) throw e;
    return { damaged: e.message.replace(`${file}: `, '') };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { damaged: 'not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { damaged: 'not a JSON object' };
  const { digest, ...content } = v as Record<string, unknown>;
  if (digest === undefined) return { damaged: NO_DIGEST };
  if (typeof digest !== 'string' || digest !== digestOf(content))
    return { damaged: 'content does not match its digest' };
  return { content };
}

/** What a cell file is expected to hold: the grid position its key stands for. */
interface CellExpectation {
  model: string;
  attack: string;
  eps: number;
  n: number;
}

/** The cell in `content`, or why it is not a sound one; `expect` adds the grid position checks. */
function cellIn(
  content: Record<string, unknown>,
  expect?: CellExpectation,
): { cell?: CellResult; damaged?: string } {
  const c = content as unknown as CellResult;
  const why = cellProblem(content, expect?.n ?? (c.stats as { n?: number } | undefined)?.n ?? 0);
  if (why) return { damaged: why };
  if (expect && (c.model !== expect.model || c.attack !== expect.attack || c.eps !== expect.eps))
    return { damaged: 'holds another model, attack or eps' };
  return { cell: c };
}

/** Cells are a few KB (a mask and a small PNG); anything far larger is not one of ours. */
const MAX_CELL_BYTES = 16 * 2 ** 20;

/**
 * Reads a cell file: `cell` when it is sound, `damaged` (why) when it exists but cannot be
 * trusted, neither when there is no file.
 */
export function readCell(
  file: string,
  expect?: CellExpectation,
): { cell?: CellResult; damaged?: string } {
  const r = readDigested(file, { maxBytes: MAX_CELL_BYTES, what: 'cell file' });
  return r.content ? cellIn(r.content, expect) : r;
}
