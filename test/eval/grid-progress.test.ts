/**
 * The grid passes where a batch stands to its caller (a page's progress line) cell by cell; the
 * cells are the same with or without a listener.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { memoryCellStore, runGridIn, type EvalConfig } from '../../eval/grid-core.js';
import { describePosition, positionDone, type RunPosition } from '../../eval/attack-run.js';
import { gridModel, syntheticSet } from './fixtures.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const config: EvalConfig = {
  models: ['m'],
  attacks: ['fab-t:6', 'square:30'],
  eps: [0, 0.1],
  norm: 'linf',
  limit: 12,
  batchSize: 8,
  seed: 0,
};

/** A cell without its times, which differ from run to run. */
const numbers = ({ stats, ...c }: { stats: { seconds: number; img_per_s: number } }) => {
  const { seconds: _s, img_per_s: _r, ...rest } = stats;
  return { ...c, stats: rest };
};

describe('runGridIn onProgress', () => {
  it('tells each cell where its batch stands, in order; the cells are those of a run without it', async () => {
    const heard: { cell: string; p: RunPosition }[] = [];
    const withHook = await runGridIn(memoryCellStore(), config, [gridModel(syntheticSet(12))], {
      backend: 'wasm',
      quiet: true,
      onProgress: (cell, p) =>
        heard.push({ cell: `${cell.attack} ${cell.eps}`, p: structuredClone(p) }),
    });
    const without = await runGridIn(memoryCellStore(), config, [gridModel(syntheticSet(12))], {
      backend: 'wasm',
      quiet: true,
    });
    expect(withHook.result.cells.map(numbers)).toEqual(without.result.cells.map(numbers));

    // every cell was heard from, in the grid's order, with its two batches (8 and 4 images)
    const cells = [...new Set(heard.map((h) => h.cell))];
    expect(cells).toEqual(['fab-t:6 0', 'square:30 0', 'fab-t:6 0.1', 'square:30 0.1']);
    for (const c of cells) {
      const mine = heard.filter((h) => h.cell === c).map((h) => h.p);
      expect(mine[0]).toMatchObject({ seen: 0, total: 12, batch: 1, batches: 2, images: 8 });
      expect(mine.at(-1)).toMatchObject({ seen: 8, batch: 2, images: 4 });
      expect(mine.at(-1)!.attack.done).toBe(1);
      for (let i = 1; i < mine.length; i++)
        expect(positionDone(mine[i]), c).toBeGreaterThanOrEqual(positionDone(mine[i - 1]));
    }
    // eps 0: nothing to search, one report per batch (the whole call at once)
    expect(heard.filter((h) => h.cell === 'fab-t:6 0')).toHaveLength(2);
    const fab = heard.find((h) => h.cell === 'fab-t:6 0.1' && h.p.attack.step === 3)!;
    expect(describePosition(fab.p)).toMatch(
      /^batch 1\/2: target 1\/4 · step 3\/6 · \d\/\d still robust$/,
    );
    const sq = heard.find((h) => h.cell === 'square:30 0.1' && h.p.attack.step === 10)!;
    expect(describePosition(sq.p)).toMatch(/^batch 1\/2: query 10\/30 · \d\/\d still robust$/);
  });
});
