/** Comparing the page's results.json with robust eval's: what must be equal, and how far sizes drift on another backend. */

interface Results {
  models: Record<string, unknown>[];
  cells: { robust: string; backend?: string; compute?: string; stats: Record<string, unknown> }[];
  worst: unknown;
  config: unknown;
  flags: unknown;
}

/** What must agree between two runs of one grid on one backend: everything but times, dates, the backend and the thread count. */
export function comparableResults(resultsJson: string) {
  const r = JSON.parse(resultsJson) as Results;
  return {
    models: r.models.map(
      ({ model, arch, params, defense, fingerprint, data_sha256, n, clean_acc, checks }) => ({
        model,
        arch,
        params,
        defense,
        fingerprint,
        data_sha256,
        n,
        clean_acc,
        checks,
      }),
    ),
    cells: r.cells.map((c) => {
      const { seconds: _s, img_per_s: _i, ...stats } = c.stats;
      return { ...c, stats, backend: undefined };
    }),
    worst: r.worst,
    config: r.config,
    flags: r.flags,
  };
}

/** The perturbation sizes a cell reports (float sums: they may drift by rounding on another backend). */
export const SIZE_STATS = ['linf_mean', 'linf_max', 'l2_mean', 'l2_max', 'l1_mean', 'l1_max'];

export interface BackendDrift {
  /** Cells whose robust mask differs, and the images that differ in them. */
  maskCells: number;
  maskImages: number;
  /** The largest |a-b|/|b| over every cell's perturbation sizes. */
  sizeRelative: number;
  /** The stat where it was largest, as cell:stat. */
  sizeWorst: string;
  /** Whether everything else (fingerprints, data hash, config, accuracies, checks, worst cases) is equal; the kernels' name aside. */
  restEqual: boolean;
}

/** How the page's results on another backend differ from robust eval's. */
export function backendDrift(pageJson: string, nodeJson: string): BackendDrift {
  const a = comparableResults(pageJson);
  const b = comparableResults(nodeJson);
  let maskCells = 0;
  let maskImages = 0;
  let sizeRelative = 0;
  let sizeWorst = '-';
  a.cells.forEach((c, i) => {
    const o = b.cells[i];
    if (c.robust !== o.robust) {
      maskCells++;
      for (let k = 0; k < Math.max(c.robust.length, o.robust.length); k++)
        if (c.robust[k] !== o.robust[k]) maskImages++;
    }
    for (const k of SIZE_STATS) {
      const x = Number(c.stats[k]);
      const y = Number(o.stats[k]);
      const rel = x === y ? 0 : Math.abs(x - y) / Math.max(1e-12, Math.abs(y));
      if (rel > sizeRelative) {
        sizeRelative = rel;
        sizeWorst = `cell ${i}:${k}`;
      }
    }
  });
  const strip = (r: ReturnType<typeof comparableResults>) => ({
    ...r,
    cells: r.cells.map((c) => ({
      ...c,
      robust: undefined,
      compute: undefined, // the backend's kernels, by name
      stats: Object.fromEntries(Object.entries(c.stats).filter(([k]) => !SIZE_STATS.includes(k))),
    })),
  });
  const restEqual = JSON.stringify(strip(a)) === JSON.stringify(strip(b));
  return { maskCells, maskImages, sizeRelative, sizeWorst, restEqual };
}
