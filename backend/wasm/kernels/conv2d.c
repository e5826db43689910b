/*
 * Forward 2-D convolution (NHWC input, [kh, kw, Cin, Cout] filter, no dilation) plus a bias, in wasm SIMD.
 *
 *   y[n][oh][ow][co] = bias[co] + sum over a, b, ci of  x[n][oh*sh - top + a][ow*sw - left + b][ci] * w[a][b][ci][co]
 *
 * A register tile holds 4 neighbouring output positions x 8 output channels; for each tap and input
 * channel it loads 8 filter values and 4 input values (splat) for 32 multiply-adds. The filter is
 * first packed so that each 8-channel slice is contiguous (pack_filter); no im2col, no operator to create — XNNPACK's set-up per call costs as much as the small convs of a
 * CIFAR ResNet. Positions near the border, where some taps fall in the padding, take a checked
 * one-position tile.
 */
#include "common.h"

/* Input column iw of row xrow, or the zeros where iw is padding. */
INLINE const float *column(const Geometry *g, const float *xrow, int iw) {
  return iw < 0 || iw >= g->W ? g->zeros : xrow + iw * g->Ci;
}

/*
 * P output positions (1 or 4) x 4V output channels (V = 1 or 2) at row oh, columns ow0.. of image n.
 * `checked`: some taps of these positions fall in the padding (border tiles); they read zeros.
 */
INLINE void tile(const int P, const int V, const int checked, float *y, const float *x, const float *packed, const Geometry *g,
                 int kh, int kw, int n, int oh, int ow0, int co0) {
  /* The sums start from the bias. */
  v128_t s0 = wasm_v128_load(g->bias + co0), s1 = s0, s2 = s0, s3 = s0;
  v128_t t0 = V > 1 ? wasm_v128_load(g->bias + co0 + 4) : s0, t1 = t0, t2 = t0, t3 = t0;
  const int Ci = g->Ci, Co = g->Co, sw = g->sw, xstep = sw * Ci;
  for (int a = 0; a < kh; a++) {
    const int ih = oh * g->sh - g->top + a;
    if (ih < 0 || ih >= g->H) continue;
    const float *xrow = x + (n * g->H + ih) * g->W * Ci;
    /* Inside the image, a row's taps b = 0..kw-1 read kw*Ci consecutive inputs, one loop. */
    const int bs = checked ? kw : 1, run = checked ? Ci : kw * Ci;
    for (int b = 0; b < bs; b++) {
      const int iw = ow0 * sw - g->left + b;
      const float *x0, *x1 = 0, *x2 = 0, *x3 = 0;
      if (checked) {
        /* Columns iw, iw + sw, ...: skip the tap when all of them are padding. */
        const int last = iw + (P - 1) * sw;
        if (last < 0 || iw >= g->W) continue;
        x0 = column(g, xrow, iw);
        if (P > 1) {
          x1 = column(g, xrow, iw + sw);
          x2 = column(g, xrow, iw + 2 * sw);
          x3 = column(g, xrow, iw + 3 * sw);
        }
      } else {
        x0 = xrow + iw * Ci;
        x1 = x0 + xstep;
        x2 = x0 + 2 * xstep;
        x3 = x0 + 3 * xstep;
      }
      const float *wp = packed + co0 * kh * kw * Ci + (a * kw + b) * Ci * 4 * V;
      for (int k = 0; k < run; k++, wp += 4 * V) {
        const v128_t w0 = wasm_v128_load(wp);
        const v128_t w1 = V > 1 ? wasm_v128_load(wp + 4) : w0;
        v128_t v = wasm_v128_load32_splat(x0 + k);
        s0 = MADD(v, w0, s0);
        if (V > 1) t0 = MADD(v, w1, t0);
        if (P > 1) {
          v = wasm_v128_load32_splat(x1 + k);
          s1 = MADD(v, w0, s1);
          if (V > 1) t1 = MADD(v, w1, t1);
          v = wasm_v128_load32_splat(x2 + k);
          s2 = MADD(v, w0, s2);
          if (V > 1) t2 = MADD(v, w1, t2);
          v = wasm_v128_load32_splat(x3 + k);
          s3 = MADD(v, w0, s3);
          if (V > 1) t3 = MADD(v, w1, t3);
        }
      }
    }
  }
  float *yp = y + ((n * g->Ho + oh) * g->Wo + ow0) * Co + co0;
  wasm_v128_store(yp, s0);
  if (V > 1) wasm_v128_store(yp + 4, t0);
  if (P > 1) {
    wasm_v128_store(yp + Co, s1);
    wasm_v128_store(yp + 2 * Co, s2);
    wasm_v128_store(yp + 3 * Co, s3);
    if (V > 1) {
      wasm_v128_store(yp + Co + 4, t1);
      wasm_v128_store(yp + 2 * Co + 4, t2);
      wasm_v128_store(yp + 3 * Co + 4, t3);
    }
  }
}

/* One output position, output channels co0.. (fewer than 4), scalar. */
INLINE void tail(float *y, const float *x, const float *w, const Geometry *g, int kh, int kw, int n, int oh, int ow, int co0) {
  for (int co = co0; co < g->Co; co++) {
    float sum = g->bias[co];
    for (int a = 0; a < kh; a++) {
      const int ih = oh * g->sh - g->top + a;
      if (ih < 0 || ih >= g->H) continue;
      for (int b = 0; b < kw; b++) {
        const int iw = ow * g->sw - g->left + b;
        if (iw < 0 || iw >= g->W) continue;
        const float *xp = x + ((n * g->H + ih) * g->W + iw) * g->Ci;
        const float *wp = w + (a * kw + b) * g->Ci * g->Co + co;
        for (int ci = 0; ci < g->Ci; ci++) sum += xp[ci] * wp[ci * g->Co];
      }
    }
    y[((n * g->Ho + oh) * g->Wo + ow) * g->Co + co] = sum;
  }
}

/* Output channels co0..co0+4V of the whole row, four columns at a time; [lo, hi) see no padding. */
INLINE void sweep(const int V, float *y, const float *x, const float *packed, const Geometry *g, int kh, int kw, int n, int oh,
                  int co0, int lo, int hi) {
  int ow = 0;
  for (; ow + 4 <= g->Wo; ow += 4) {
    if (ow >= lo && ow + 4 <= hi) tile(4, V, 0, y, x, packed, g, kh, kw, n, oh, ow, co0);
    else tile(4, V, 1, y, x, packed, g, kh, kw, n, oh, ow, co0);
  }
  for (; ow < g->Wo; ow++) {
    if (ow >= lo && ow < hi) tile(1, V, 0, y, x, packed, g, kh, kw, n, oh, ow, co0);
    else tile(1, V, 1, y, x, packed, g, kh, kw, n, oh, ow, co0);
  }
}

/*
 * The filter [K = kh*kw*Ci][Co] with each slice of 8 output channels made contiguous, [Co/8][K][8],
 * followed by the slice of 4 (if Co mod 8 >= 4) as [K][4]: tile t of width 4V starts at t*K.
 * Channels past the last multiple of 4 are read from the filter itself.
 */
EXPORT(pack_filter)
void pack_filter(float *packed, const float *w, int K, int Co) {
  const int co8 = Co & ~7, co4 = Co & ~3;
  float *dst = packed;
  for (int co = 0; co < co8; co += 8)
    for (int k = 0; k < K; k++, dst += 8) {
      wasm_v128_store(dst, wasm_v128_load(w + k * Co + co));
      wasm_v128_store(dst + 4, wasm_v128_load(w + k * Co + co + 4));
    }
  if (co8 < co4)
    for (int k = 0; k < K; k++, dst += 4) wasm_v128_store(dst, wasm_v128_load(w + k * Co + co8));
}

/*
 * Writes rows [row0, row1) of the flattened [N * Ho] output rows of y = conv(x, w) + bias;
 * `packed` is pack_filter(w), `zeros` at least Ci zero floats, `bias` Co floats (zeros for none); then
 * the epilogue (common.h) on each row: + `res` (same shape as y; null for none), ReLU when `relu`.
 */
EXPORT(conv2d)
void conv2d(float *y, const float *x, const float *w, const float *packed, const float *zeros, const float *bias, const float *res,
            int relu, int H, int W, int Ci, int Ho, int Wo, int Co, int kh, int kw, int sh, int sw, int top, int left, int row0, int row1) {
  const Geometry g = {H, W, Ci, Ho, Wo, Co, sh, sw, top, left, zeros, bias};
  /* Columns [lo, hi) see every tap inside the image: ow*sw - left >= 0 and ow*sw - left + kw - 1 < W. */
  int lo = (left + sw - 1) / sw;
  int hi = W - kw + left >= 0 ? (W - kw + left) / sw + 1 : 0;
  if (hi > Wo) hi = Wo;
  if (lo > hi) lo = hi;
  const int co8 = Co & ~7, co4 = Co & ~3;
  /* Channel tiles outside, columns inside: the tile's slice of the filter stays in L1 along the row. */
  for (int r = row0; r < row1; r++) {
    const int n = r / Ho, oh = r % Ho;
    int co = 0;
    for (; co < co8; co += 8) sweep(2, y, x, packed, &g, kh, kw, n, oh, co, lo, hi);
    if (co < co4) sweep(1, y, x, packed, &g, kh, kw, n, oh, co, lo, hi);
    if (co4 < Co)
      for (int ow = 0; ow < Wo; ow++) tail(y, x, w, &g, kh, kw, n, oh, ow, co4);
    epilogue(y + r * Wo * Co, res ? res + r * Wo * Co : 0, Wo * Co, relu);
  }
}
