/**
 * The arithmetic of `npm run bench`'s alternated rounds: per metric, the median of ours, of
 * PyTorch's, and of the ratios of each round (ours and PyTorch measured back to back), with the
 * ratios' min and max. A ratio per round, not a ratio of medians: a round's two measurements share
 * the machine's load of that moment.
 */

/** The median (mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface MetricSummary {
  /** Median img/s of ours over the rounds, and the min–max. */
  ours: number;
  oursRange: [number, number];
  /** The same for PyTorch, when it ran (every round). */
  torch?: number;
  torchRange?: [number, number];
  /** Median over the rounds of ours / PyTorch, and the min–max. */
  ratio?: number;
  ratioRange?: [number, number];
  rounds: number;
}

/** img/s to 1 decimal, or 3 significant digits below 10 (attacks run at a few img/s). */
const rate = (x: number) => +(Math.abs(x) >= 10 ? x.toFixed(1) : x.toPrecision(3));
const ratio = (x: number) => +x.toFixed(2);

/**
 * Summary of one metric: `ours[r]` and `torch[r]` are round r's img/s (torch null: not measured).
 * The ratio is given only when every round has both.
 */
export function summarize(
  ours: readonly number[],
  torch: readonly (number | null)[],
): MetricSummary {
  const s: MetricSummary = {
    ours: rate(median(ours)),
    oursRange: [rate(Math.min(...ours)), rate(Math.max(...ours))],
    rounds: ours.length,
  };
  const t = torch.filter((v): v is number => v !== null && v > 0);
  if (t.length === ours.length && t.length > 0) {
    const ratios = ours.map((o, i) => o / t[i]);
    s.torch = rate(median(t));
    s.torchRange = [rate(Math.min(...t)), rate(Math.max(...t))];
    s.ratio = ratio(median(ratios));
    s.ratioRange = [ratio(Math.min(...ratios)), ratio(Math.max(...ratios))];
  }
  return s;
}

/** "545 (530–560)" and, with a ratio, "× PyTorch 940 (900–990) = 0.58 (0.55–0.61)". */
export function formatSummary(s: MetricSummary): string {
  const base = `${s.ours} (${s.oursRange[0]}–${s.oursRange[1]})`;
  if (s.ratio === undefined) return base;
  return `${base}  PyTorch ${s.torch} (${s.torchRange![0]}–${s.torchRange![1]})  ratio ${s.ratio} (${s.ratioRange![0]}–${s.ratioRange![1]})`;
}
