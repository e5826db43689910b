/*
 * A depthwise 2-D convolution (NHWC, filter [kh, kw, C, M], any stride, padding and dilation) and
 * its gradients, in wasm SIMD: MobileNet / EfficientNet layers, which tfjs's wasm backend cannot
 * differentiate at all (and whose XNNPACK forward returns zeros for some SAME-padded shapes).
 *
 *   y[n][oh][ow][c*M + q] = sum over a, b of  x[n][oh*sh - top + a*dh][ow*sw - left + b*dw][c] * w[a][b][c][q]
 *
 * w's last two axes flattened are the output channel, o = c*M + q, so with one channel per input
 * channel (M = 1, every MobileNet) x, w and dy all line up channel for channel and 4 channels make
 * one SIMD vector. These kernels do that case; for M > 1 the JS side widens x to the output
 * channels first (depthwise_expand) or sums the M channels of the result after (depthwise_reduce).
 *
 * Channels run 16 at a time (4 vectors of sums in registers), then 8, then 4, the last 1-3 scalar.
 */
#include "common.h"

typedef struct {
  int H, W, C, Ho, Wo, kh, kw, sh, sw, dh, dw, top, left;
} Depthwise;

/*
 * dx at (n, ih, iw), channels c..c+4V: the sum over taps (a, b) that reach it of dy * w. S1: stride 1
 * (no divisions). The taps' rows t = ih + top - a*dh fall as a grows, so the first one below zero ends the loop.
 */
INLINE void dx_tile(const int V, const int S1, float *out, const float *dy, const float *w, const Depthwise *g, int n, int ih, int iw, int c) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  const int C = g->C;
  for (int a = 0; a < g->kh; a++) {
    const int t = ih + g->top - a * g->dh;
    if (t < 0) break;
    if (!S1 && t % g->sh) continue;
    const int oh = S1 ? t : t / g->sh;
    if (oh >= g->Ho) continue;
    const float *dyrow = dy + (n * g->Ho + oh) * g->Wo * C + c;
    const float *wrow = w + a * g->kw * C + c;
    for (int b = 0; b < g->kw; b++) {
      const int u = iw + g->left - b * g->dw;
      if (u < 0) break;
      if (!S1 && u % g->sw) continue;
      const int ow = S1 ? u : u / g->sw;
      if (ow >= g->Wo) continue;
      const float *dp = dyrow + ow * C, *wp = wrow + b * C;
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(dp), wasm_v128_load(wp)));
      if (V > 1) s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(dp + 4), wasm_v128_load(wp + 4)));
      if (V > 2) s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(dp + 8), wasm_v128_load(wp + 8)));
      if (V > 3) s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(dp + 12), wasm_v128_load(wp + 12)));
    }
  }
  wasm_v128_store(out, s0);
  if (V > 1) wasm_v128_store(out + 4, s1);
  if (V > 2) wasm_v128_store(out + 8, s2);
  if (V > 3) wasm_v128_store(out + 12, s3);
}

/* The same for one channel, scalar (the last C mod 4). */
INLINE float dx_scalar(const float *dy, const float *w, const Depthwise *g, int n, int ih, int iw, int c) {
  float s = 0;
  for (int a = 0; a < g->kh; a++) {
    const int t = ih + g->top - a * g->dh;
    if (t < 0) break;
    if (t % g->sh || t / g->sh >= g->Ho) continue;
    for (int b = 0; b < g->kw; b++) {
      const int u = iw + g->left - b * g->dw;
      if (u < 0) break;
      if (u % g->sw || u / g->sw >= g->Wo) continue;
      s += dy[((n * g->Ho + t / g->sh) * g->Wo + u / g->sw) * g->C + c] * w[(a * g->kw + b) * g->C + c];
    }
  }
  return s;
}

INLINE void dx_row(const int S1, float *dx, const float *dy, const float *w, const Depthwise *g, int n, int ih) {
  const int C = g->C;
  float *row = dx + (n * g->H + ih) * g->W * C;
  for (int iw = 0; iw < g->W; iw++) {
    float *out = row + iw * C;
    int c = 0;
    for (; c + 16 <= C; c += 16) dx_tile(4, S1, out + c, dy, w, g, n, ih, iw, c);
    if (c + 8 <= C) { dx_tile(2, S1, out + c, dy, w, g, n, ih, iw, c); c += 8; }
    if (c + 4 <= C) { dx_tile(1, S1, out + c, dy, w, g, n, ih, iw, c); c += 4; }
    for (; c < C; c++) out[c] = dx_scalar(dy, w, g, n, ih, iw, c);
  }
}

/*
 * Writes rows [row0, row1) of the flattened [N * H] rows of dx (M = 1): the input gradient, every
 * position written once as the sum over the taps that reach it (no zeroing, no scatter).
 */
EXPORT(depthwise_backprop_input)
void depthwise_backprop_input(float *dx, const float *dy, const float *w, int H, int W, int C, int Ho, int Wo, int kh, int kw, int sh, int sw,
                              int dh, int dw, int top, int left, int row0, int row1) {
  const Depthwise g = {H, W, C, Ho, Wo, kh, kw, sh, sw, dh, dw, top, left};
  const int s1 = sh == 1 && sw == 1;
  for (int r = row0; r < row1; r++) {
    if (s1) dx_row(1, dx, dy, w, &g, r / H, r % H);
    else dx_row(0, dx, dy, w, &g, r / H, r % H);
  }
}

/*
 * y at (n, oh, ow), channels c..c+4V: bias + the sum over the taps inside the image of x * w, then
 * the activation (0 none, 1 ReLU, 2 ReLU6; NaN stays NaN as in the cpu backend).
 */
INLINE void y_tile(const int V, float *out, const float *x, const float *w, const float *bias, int act, const Depthwise *g, int n, int oh, int ow,
                   int c) {
  v128_t s0 = wasm_v128_load(bias + c);
  v128_t s1 = V > 1 ? wasm_v128_load(bias + c + 4) : s0;
  v128_t s2 = V > 2 ? wasm_v128_load(bias + c + 8) : s0;
  v128_t s3 = V > 3 ? wasm_v128_load(bias + c + 12) : s0;
  const int C = g->C;
  for (int a = 0; a < g->kh; a++) {
    const int ih = oh * g->sh - g->top + a * g->dh;
    if (ih < 0) continue;
    if (ih >= g->H) break;
    const float *xrow = x + (n * g->H + ih) * g->W * C + c;
    const float *wrow = w + a * g->kw * C + c;
    for (int b = 0; b < g->kw; b++) {
      const int iw = ow * g->sw - g->left + b * g->dw;
      if (iw < 0) continue;
      if (iw >= g->W) break;
      const float *xp = xrow + iw * C, *wp = wrow + b * C;
      s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(xp), wasm_v128_load(wp)));
      if (V > 1) s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(xp + 4), wasm_v128_load(wp + 4)));
      if (V > 2) s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(xp + 8), wasm_v128_load(wp + 8)));
      if (V > 3) s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(xp + 12), wasm_v128_load(wp + 12)));
    }
  }
  if (act) {
    const v128_t zero = wasm_f32x4_splat(0), six = wasm_f32x4_splat(6);
    s0 = wasm_f32x4_max(s0, zero);
    s1 = wasm_f32x4_max(s1, zero);
    s2 = wasm_f32x4_max(s2, zero);
    s3 = wasm_f32x4_max(s3, zero);
    if (act == 2) {
      s0 = wasm_f32x4_min(s0, six);
      s1 = wasm_f32x4_min(s1, six);
      s2 = wasm_f32x4_min(s2, six);
      s3 = wasm_f32x4_min(s3, six);
    }
  }
  wasm_v128_store(out, s0);
  if (V > 1) wasm_v128_store(out + 4, s1);
  if (V > 2) wasm_v128_store(out + 8, s2);
  if (V > 3) wasm_v128_store(out + 12, s3);
}

INLINE float y_scalar(const float *x, const float *w, const float *bias, int act, const Depthwise *g, int n, int oh, int ow, int c) {
  float s = bias[c];
  for (int a = 0; a < g->kh; a++) {
    const int ih = oh * g->sh - g->top + a * g->dh;
    if (ih < 0) continue;
    if (ih >= g->H) break;
    for (int b = 0; b < g->kw; b++) {
      const int iw = ow * g->sw - g->left + b * g->dw;
      if (iw < 0) continue;
      if (iw >= g->W) break;
      s += x[((n * g->H + ih) * g->W + iw) * g->C + c] * w[(a * g->kw + b) * g->C + c];
    }
  }
  if (act && !(s != s)) s = s > 0 ? (act == 2 && s > 6 ? 6.0f : s) : 0.0f;
  return s;
}

/*
 * Writes rows [row0, row1) of the flattened [N * Ho] rows of y = act(depthwise(x, w) + bias) (M = 1;
 * `bias` C floats, zeros for none).
 */
EXPORT(depthwise_conv2d)
void depthwise_conv2d(float *y, const float *x, const float *w, const float *bias, int act, int H, int W, int C, int Ho, int Wo, int kh, int kw,
                      int sh, int sw, int dh, int dw, int top, int left, int row0, int row1) {
  const Depthwise g = {H, W, C, Ho, Wo, kh, kw, sh, sw, dh, dw, top, left};
  for (int r = row0; r < row1; r++) {
    const int n = r / Ho, oh = r % Ho;
    float *row = y + r * Wo * C;
    for (int ow = 0; ow < Wo; ow++) {
      float *out = row + ow * C;
      int c = 0;
      for (; c + 16 <= C; c += 16) y_tile(4, out + c, x, w, bias, act, &g, n, oh, ow, c);
      if (c + 8 <= C) { y_tile(2, out + c, x, w, bias, act, &g, n, oh, ow, c); c += 8; }
      if (c + 4 <= C) { y_tile(1, out + c, x, w, bias, act, &g, n, oh, ow, c); c += 4; }
      for (; c < C; c++) out[c] = y_scalar(x, w, bias, act, &g, n, oh, ow, c);
    }
  }
}

/*
 * acc[c..c+4V) += the sum over output columns [o0, o1) of x * dy, the input column advancing by
 * `xstep` floats per output column.
 */
INLINE void dw_tile(const int V, float *acc, const float *xp, const float *dp, int xstep, int C, int count) {
  v128_t s0 = wasm_v128_load(acc);
  v128_t s1 = V > 1 ? wasm_v128_load(acc + 4) : s0;
  v128_t s2 = V > 2 ? wasm_v128_load(acc + 8) : s0;
  v128_t s3 = V > 3 ? wasm_v128_load(acc + 12) : s0;
  for (int i = 0; i < count; i++, xp += xstep, dp += C) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(xp), wasm_v128_load(dp)));
    if (V > 1) s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(xp + 4), wasm_v128_load(dp + 4)));
    if (V > 2) s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(xp + 8), wasm_v128_load(dp + 8)));
    if (V > 3) s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(xp + 12), wasm_v128_load(dp + 12)));
  }
  wasm_v128_store(acc, s0);
  if (V > 1) wasm_v128_store(acc + 4, s1);
  if (V > 2) wasm_v128_store(acc + 8, s2);
  if (V > 3) wasm_v128_store(acc + 12, s3);
}

/*
 * Writes to acc ([kh, kw, C]) the filter gradient (M = 1) of output rows [row0, row1) of the
 * flattened [N * Ho] rows of dy: one chunk, summed with the others in chunk order by the caller.
 * For each tap, the output columns whose input column lies inside the image form one range: no
 * per-position checks.
 */
EXPORT(depthwise_filter_grad)
void depthwise_filter_grad(float *acc, const float *x, const float *dy, int H, int W, int C, int Ho, int Wo, int kh, int kw, int sh, int sw,
                           int dh, int dw, int top, int left, int row0, int row1) {
  const int xstep = sw * C;
  zero(acc, kh * kw * C);
  for (int r = row0; r < row1; r++) {
    const int n = r / Ho, oh = r % Ho;
    const float *dyrow = dy + r * Wo * C;
    for (int a = 0; a < kh; a++) {
      const int ih = oh * sh - top + a * dh;
      if (ih < 0) continue;
      if (ih >= H) break;
      const float *xrow = x + (n * H + ih) * W * C;
      for (int b = 0; b < kw; b++) {
        /* Columns ow with 0 <= ow*sw - left + b*dw < W. */
        const int need = left - b * dw, limit = W - 1 + left - b * dw;
        const int o0 = need <= 0 ? 0 : (need + sw - 1) / sw;
        int o1 = limit < 0 ? 0 : limit / sw + 1;
        if (o1 > Wo) o1 = Wo;
        if (o0 >= o1) continue;
        const float *xp = xrow + (o0 * sw - left + b * dw) * C, *dp = dyrow + o0 * C;
        float *tap = acc + (a * kw + b) * C;
        const int count = o1 - o0;
        int c = 0;
        for (; c + 16 <= C; c += 16) dw_tile(4, tap + c, xp + c, dp + c, xstep, C, count);
        if (c + 8 <= C) { dw_tile(2, tap + c, xp + c, dp + c, xstep, C, count); c += 8; }
        if (c + 4 <= C) { dw_tile(1, tap + c, xp + c, dp + c, xstep, C, count); c += 4; }
        for (; c < C; c++) {
          float s = tap[c];
          for (int i = 0; i < count; i++) s += xp[i * xstep + c] * dp[i * C + c];
          tap[c] = s;
        }
      }
    }
  }
}

/* For M > 1: xe[p][c*M + q] = x[p][c], positions p in rows [r0, r1) of `W` positions. */
EXPORT(depthwise_expand)
void depthwise_expand(float *xe, const float *x, int W, int C, int M, int r0, int r1) {
  for (int p = r0 * W; p < r1 * W; p++)
    for (int c = 0; c < C; c++) {
      const float v = x[p * C + c];
      for (int q = 0; q < M; q++) xe[(p * C + c) * M + q] = v;
    }
}

/* For M > 1: dx[p][c] = sum over q of t[p][c*M + q], positions p in rows [r0, r1) of `W` positions. */
EXPORT(depthwise_reduce)
void depthwise_reduce(float *dx, const float *t, int W, int C, int M, int r0, int r1) {
  for (int p = r0 * W; p < r1 * W; p++)
    for (int c = 0; c < C; c++) {
      float s = 0;
      for (int q = 0; q < M; q++) s += t[(p * C + c) * M + q];
      dx[p * C + c] = s;
    }
}
