/**
 * eps for people: a short decimal stays one (0.1, 0.05), a simple multiple of 1/255 becomes
 * "8/255" (0.00196 → "0.5/255"), 0 → "0", anything else the number to 4 digits.
 */
export function formatEps(eps: number): string {
  if (eps === 0) return '0';
  if (Math.abs(eps - +eps.toFixed(3)) < 1e-12) return `${+eps.toFixed(3)}`;
  const k = eps * 255;
  const r = Math.round(k * 1000) / 1000;
  return Math.abs(k - r) < 1e-6 ? `${r}/255` : `${+eps.toPrecision(4)}`;
}
