/*
 * Filter gradient of a 2-D convolution (NHWC input, [kh, kw, Cin, Cout] filter), in wasm SIMD.
 *
 *   dW[a][b][ci][co] = sum over n, oh, ow of  x[n][oh*sh - top + a][ow*sw - left + b][ci] * dy[n][oh][ow][co]
 *
 * For each filter tap this is a GEMM whose long dimension runs over output positions. We walk the
 * input and dy in place (no transposes, no packing) and keep a tile of 4 input channels x 8 output
 * channels of dW in registers while it runs over a block of rows that stays in cache.
 *
 */
#include "common.h"

/* Output columns ow whose input column ow*sw - left + b falls inside [0, W). */
INLINE int first_col(const Geometry *g, int b) {
  int need = g->left - b; /* ow*sw >= need */
  return need <= 0 ? 0 : (need + g->sw - 1) / g->sw;
}
INLINE int end_col(const Geometry *g, int b) {
  int limit = g->W - 1 + g->left - b; /* ow*sw <= limit */
  if (limit < 0) return 0;
  int end = limit / g->sw + 1;
  return end < g->Wo ? end : g->Wo;
}

/*
 * One register tile: R input channels (1..4) x 4V output channels (V = 1 or 2) of tap (a, b),
 * accumulated over output rows [oh0, oh1) of image n and columns [c0, c1).
 */
INLINE void tile(const int R, const int V, float *acc, const float *x, const float *dy, const Geometry *g,
                 int n, int oh0, int oh1, int a, int b, int ci0, int co0, int c0, int c1) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  const int Co = g->Co;
  s0 = wasm_v128_load(acc);
  if (V > 1) t0 = wasm_v128_load(acc + 4);
  if (R > 1) { s1 = wasm_v128_load(acc + Co); if (V > 1) t1 = wasm_v128_load(acc + Co + 4); }
  if (R > 2) { s2 = wasm_v128_load(acc + 2 * Co); if (V > 1) t2 = wasm_v128_load(acc + 2 * Co + 4); }
  if (R > 3) { s3 = wasm_v128_load(acc + 3 * Co); if (V > 1) t3 = wasm_v128_load(acc + 3 * Co + 4); }
  const int xstep = g->sw * g->Ci;
  for (int oh = oh0; oh < oh1; oh++) {
    const int ih = oh * g->sh - g->top + a;
    if (ih < 0 || ih >= g->H) continue;
    const float *xp = x + ((n * g->H + ih) * g->W + c0 * g->sw - g->left + b) * g->Ci + ci0;
    const float *dp = dy + ((n * g->Ho + oh) * g->Wo + c0) * Co + co0;
    for (int ow = c0; ow < c1; ow++, xp += xstep, dp += Co) {
      const v128_t d0 = wasm_v128_load(dp);
      const v128_t d1 = V > 1 ? wasm_v128_load(dp + 4) : d0;
      v128_t v = wasm_v128_load32_splat(xp);
      s0 = MADD(v, d0, s0);
      if (V > 1) t0 = MADD(v, d1, t0);
      if (R > 1) {
        v = wasm_v128_load32_splat(xp + 1);
        s1 = MADD(v, d0, s1);
        if (V > 1) t1 = MADD(v, d1, t1);
      }
      if (R > 2) {
        v = wasm_v128_load32_splat(xp + 2);
        s2 = MADD(v, d0, s2);
        if (V > 1) t2 = MADD(v, d1, t2);
      }
      if (R > 3) {
        v = wasm_v128_load32_splat(xp + 3);
        s3 = MADD(v, d0, s3);
        if (V > 1) t3 = MADD(v, d1, t3);
      }
    }
  }
  wasm_v128_store(acc, s0);
  if (V > 1) wasm_v128_store(acc + 4, t0);
  if (R > 1) { wasm_v128_store(acc + Co, s1); if (V > 1) wasm_v128_store(acc + Co + 4, t1); }
  if (R > 2) { wasm_v128_store(acc + 2 * Co, s2); if (V > 1) wasm_v128_store(acc + 2 * Co + 4, t2); }
  if (R > 3) { wasm_v128_store(acc + 3 * Co, s3); if (V > 1) wasm_v128_store(acc + 3 * Co + 4, t3); }
}

/* Output channels past the last multiple of 4, one at a time. */
INLINE void tail_channels(float *acc, const float *x, const float *dy, const Geometry *g, int n, int oh0, int oh1,
                          int a, int b, int co0, int c0, int c1) {
  for (int ci = 0; ci < g->Ci; ci++) {
    for (int co = co0; co < g->Co; co++) {
      float sum = acc[ci * g->Co + co];
      for (int oh = oh0; oh < oh1; oh++) {
        const int ih = oh * g->sh - g->top + a;
        if (ih < 0 || ih >= g->H) continue;
        for (int ow = c0; ow < c1; ow++) {
          const int iw = ow * g->sw - g->left + b;
          sum += x[((n * g->H + ih) * g->W + iw) * g->Ci + ci] * dy[((n * g->Ho + oh) * g->Wo + ow) * g->Co + co];
        }
      }
      acc[ci * g->Co + co] = sum;
    }
  }
}

/* Every tap and channel tile over rows [oh0, oh1) of image n. */
INLINE void rows(float *dw, const float *x, const float *dy, const Geometry *g, int kh, int kw, int n, int oh0, int oh1) {
  const int Ci = g->Ci, Co = g->Co;
  const int co8 = Co & ~7, co4 = Co & ~3;
  for (int a = 0; a < kh; a++) {
    for (int b = 0; b < kw; b++) {
      const int c0 = first_col(g, b), c1 = end_col(g, b);
      if (c0 >= c1) continue;
      float *tap = dw + (a * kw + b) * Ci * Co;
      int ci = 0;
      for (; ci + 4 <= Ci; ci += 4) {
        int co = 0;
        for (; co < co8; co += 8) tile(4, 2, tap + ci * Co + co, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        if (co < co4) tile(4, 1, tap + ci * Co + co, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
      }
      const int rest = Ci - ci;
      if (rest > 0) {
        int co = 0;
        for (; co < co8; co += 8) {
          float *t = tap + ci * Co + co;
          if (rest == 3) tile(3, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else if (rest == 2) tile(2, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else tile(1, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        }
        if (co < co4) {
          float *t = tap + ci * Co + co;
          if (rest == 3) tile(3, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else if (rest == 2) tile(2, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else tile(1, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        }
      }
      if (co4 < Co) tail_channels(tap, x, dy, g, n, oh0, oh1, a, b, co4, c0, c1);
    }
  }
}

/*
 * Writes to dw ([kh, kw, Ci, Co]) the sum over output rows [row0, row1) of the flattened [N * Ho]
 * row range: one chunk of the rows, whose sums the caller adds up in chunk order (so the result
 * depends on the chunks, fixed by the shape, never on the threads). Rows are taken in blocks sized
 * so that a block of dy stays in the L1/L2 cache.
 */
EXPORT(conv2d_filter_grad)
void conv2d_filter_grad(float *dw, const float *x, const float *dy, int H, int W, int Ci, int Ho, int Wo, int Co,
                        int kh, int kw, int sh, int sw, int top, int left, int row0, int row1) {
  const Geometry g = {H, W, Ci, Ho, Wo, Co, sh, sw, top, left, 0};
  int block = 16384 / (Wo * Co > 0 ? Wo * Co : 1); /* ~64 KB of dy per block */
  if (block < 1) block = 1;
  zero(dw, kh * kw * Ci * Co);
  for (int r = row0; r < row1;) {
    const int n = r / Ho, oh0 = r % Ho;
    int oh1 = oh0 + block;
    if (oh1 > Ho) oh1 = Ho;
    if (oh1 - oh0 > row1 - r) oh1 = oh0 + (row1 - r);
    rows(dw, x, dy, &g, kh, kw, n, oh0, oh1);
    r += oh1 - oh0;
  }
}
