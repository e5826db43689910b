/** 0.0314 → "8/255" (0.00196 → "0.5/255") when eps is a simple multiple of 1/255, 0 → "0", else the number. */
export function formatEps(eps: number): string {
  if (eps === 0) return '0';
  const k = eps * 255;
  const r = Math.round(k * 1000) / 1000;
  return Math.abs(k - r) < 1e-6 ? `${r}/255` : `${+eps.toPrecision(4)}`;
}
