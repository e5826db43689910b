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

const digestOf = (cell: object) => crypto.createHash('sha256').update(JSON.stringify(cell)).digest('hex');

export function writeCell(file: string, cell: CellResult): void {
  writeFileAtomic(file, JSON.stringify({ ...cell, digest: digestOf(cell) }));
}

/** What a cell file is expected to hold: the grid position its key stands for. */
export interface CellExpectation {
  model: string;
  attack: string;
  eps: number;
  n: number;
}

/** The cell in `text`, or why it is not a sound one; `expect` adds the grid position checks. */
function parseCell(text: string, expect?: CellExpectation): { cell?: CellResult; why?: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { why: 'not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { why: 'not a JSON object' };
  const { digest, ...cell } = v as Record<string, unknown>;
  if (typeof digest !== 'string' || digest !== digestOf(cell)) return { why: 'content does not match its digest' };
  const c = cell as unknown as CellResult;
  const why = cellProblem(cell, expect?.n ?? (c.stats as { n?: number } | undefined)?.n ?? 0);
  if (why) return { why };
  if (expect && (c.model !== expect.model || c.attack !== expect.attack || c.eps !== expect.eps)) return { why: 'holds another model, attack or eps' };
  return { cell: c };
}

/** Cells are a few KB (a mask and a small PNG); anything far larger is not one of ours. */
const MAX_CELL_BYTES = 16 * 2 ** 20;

/**
 * Reads a cell file: `cell` when it is sound, `damaged` (why) when it exists but cannot be
 * trusted, neither when there is no file.
 */
export function readCell(file: string, expect?: CellExpectation): { cell?: CellResult; damaged?: string } {
  if (!fs.existsSync(file)) return {};
  let text: string;
  try {
    // Only a regular file of sane size is read: a FIFO would block, /dev/zero would never end.
    text = readRegularFile(file, { maxBytes: MAX_CELL_BYTES, what: 'cell file' }).toString('utf8');
  } catch (e) {
    if (!(e instanceof RobustError)) throw e;
    return { damaged: e.message.replace(`${file}: `, '') };
  }
  const r = parseCell(text, expect);
  return r.cell ? { cell: r.cell } : { damaged: r.why };
}
