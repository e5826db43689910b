// The robust-accuracy plot labels its eps ticks as the table labels its columns (8/255, 0.1), at
// the grid's budgets, not with vega's own number format ("8.000000").
import { describe, expect, it } from 'vitest';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { epsPlotSpec } from '../../eval/report.js';
import type { GridResult } from '../../eval/grid.js';
import { formatEps } from '../../util/format.js';

/** The fields of a grid the plot reads: one attack, the worst case, the given budgets. */
function grid(eps: number[], norm: 'linf' | 'l2'): GridResult {
  return {
    config: { eps, norm, cascade: false },
    models: [{ model: 'm' }],
    cells: eps.map((e, i) => ({
      model: 'm',
      attack: 'pgd',
      eps: e,
      stats: { robust_acc: 1 - i / 10 },
    })),
    worst: eps.map((e, i) => ({ model: 'm', eps: e, robust_acc: 1 - i / 10 })),
  } as unknown as GridResult;
}

/** The x axis's tick labels of the rendered plot. */
async function xTicks(r: GridResult): Promise<string[]> {
  const view = new vega.View(vega.parse(compile(epsPlotSpec(r, 'm')).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const axis = /aria-label="X-axis.*?(?=aria-label="Y-axis)/s.exec(svg)![0];
    return [...axis.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  } finally {
    view.finalize();
  }
}

describe('the eps plot', () => {
  it('Linf budgets in 8-bit steps: ticks 0, 2/255, 4/255, 8/255 and an axis title', async () => {
    const eps = [0, 2 / 255, 4 / 255, 8 / 255];
    const ticks = await xTicks(grid(eps, 'linf'));
    expect(ticks).toEqual(expect.arrayContaining(['0', '2/255', '4/255', '8/255', 'eps (Linf)']));
    expect(ticks.join(' ')).not.toMatch(/\.0000/);
  });

  it('other budgets as the table writes them', async () => {
    const eps = [0, 0.05, 0.1, 0.25, 0.5];
    const ticks = await xTicks(grid(eps, 'l2'));
    expect(ticks).toEqual(expect.arrayContaining([...eps.map(formatEps), 'eps (L2)']));
    expect(ticks.filter((t) => /^[\d./]+$/.test(t))).toEqual(eps.map(formatEps));
  });
});
