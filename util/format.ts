/**
 * eps for people: a short decimal stays one (0.1, 0.05), a simple multiple of 1/255 becomes
 * "8/255" (0.00196 → "0.5/255"), 0 → "0", anything else the number to 4 digits.
 */
export function formatEps(eps: number): string {
  if (eps === 0) return '0';
  // a tiny eps is not 0: "0" and "0/255" are kept for eps = 0 itself
  const short = +eps.toFixed(3);
  if (short !== 0 && Math.abs(eps - short) < 1e-12) return `${short}`;
  const k = eps * 255;
  const r = Math.round(k * 1000) / 1000;
  return r !== 0 && Math.abs(k - r) < 1e-6 ? `${r}/255` : `${+eps.toPrecision(4)}`;
}

/**
 * A rate for progress lines: one decimal from 1 up, two significant digits below (FAB-T on a
 * ResNet-20 runs at 0.043 img/s, which one decimal would show as 0.0), "–" before anything is
 * measured.
 */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '–';
  return perSecond >= 1 ? perSecond.toFixed(1) : perSecond.toPrecision(2);
}

/** A duration for ETAs: "42s", "12m05s", "6h38m" (to the minute from an hour up); "–" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

// C0 controls, DEL and C1 controls: what a terminal may act on (ESC starts its escape sequences)
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g; // eslint-disable-line no-control-regex

/** `s` with each control character but those in `keep` written as JSON writes one: `\u001b`. */
export function escapeControls(s: string, keep = ''): string {
  return s.replace(CONTROL, (c) =>
    keep.includes(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `s` with its control characters escaped (escapeControls); undefined when it has none. */
export function escapedControls(s: string): string | undefined {
  const escaped = escapeControls(s);
  return escaped === s ? undefined : escaped;
}
