/**
 * The evaluation grid with its cells in a results folder (`OUT/cells/<key>.json`, and
 * `<key>.partial.json` for the cell in progress): the grid itself is eval/grid-core.ts.
 */
import path from 'node:path';
import { ensureDir } from '../util/dirs.js';
import { readCell, writeCell } from './cells.js';
import { partialFile, readPartial, removePartial, writePartial } from './partial-cells.js';
import {
  runGridIn,
  type CellStore,
  type EvalConfig,
  type EvalModel,
  type GridResult,
  type GridRunOptions,
} from './grid-core.js';

export * from './grid-core.js';

export interface GridOptions extends GridRunOptions {
  out: string;
}

/** The cells under `cellDir`, as files written atomically and digest-checked. */
function fileCellStore(cellDir: string): CellStore {
  const file = (key: string) => path.join(cellDir, `${key}.json`);
  return {
    readCell: (key, expect) => readCell(file(key), expect),
    writeCell: (key, cell) => writeCell(file(key), cell),
    readPartial: (key, expect) => readPartial(partialFile(cellDir, key), expect),
    writePartial: (key, state, on) => writePartial(partialFile(cellDir, key), key, state, on),
    removePartial: (key) => removePartial(partialFile(cellDir, key)),
    where: (key, partial) => (partial ? partialFile(cellDir, key) : file(key)),
  };
}

/** Runs (or resumes) the grid with its cells in `OUT/cells/`; returns what is done so far (all of it unless stopped). */
export async function runGrid(
  config: EvalConfig,
  models: EvalModel[],
  o: GridOptions,
): Promise<{ result: GridResult; complete: boolean }> {
  const cellDir = path.join(o.out, 'cells');
  ensureDir(cellDir);
  return runGridIn(fileCellStore(cellDir), config, models, o);
}
