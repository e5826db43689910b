/*
 * Input gradient of a 2-D convolution (NHWC, no dilation), in wasm SIMD: one attack step's backward
 * pass through a conv layer.
 *
 *   dx[n][ih][iw][ci] = sum over taps (a, b) and co of  dy[n][oh][ow][co] * w[a][b][ci][co]
 *                       where oh*sh = ih + top - a and ow*sw = iw + left - b
 *
 * The filter is first packed with its channel axes swapped, 8 input channels contiguous (pack_filter_t). Taps
 * whose offsets do not divide by the stride contribute nothing, so positions are taken by phase:
 * iw, iw + sw, iw + 2sw, iw + 3sw share their valid taps and read neighbouring columns of dy. A
 * register tile holds those 4 positions x 8 input channels. Nothing is padded, dilated or copied.
 */
#include "common.h"

/* dy column u / sw of row dyrow (u a multiple of sw), or the zeros outside dy. */
INLINE const float *dy_column(const Geometry *g, const float *dyrow, int u) {
  return u < 0 || u / g->sw >= g->Wo ? g->zeros : dyrow + (u / g->sw) * g->Co;
}

/*
 * P positions (1 or 4: iw0, iw0 + sw, ...) x 4V input channels (V = 1 or 2) at row ih of image n,
 * of which the last vector stores only L lanes (the last 1-3 channels).
 * `checked`: some taps of these positions fall outside dy (border tiles); they read zeros.
 */
INLINE void tile(const int P, const int V, const int checked, const int L, float *dx, const float *dy, const float *packed, const Geometry *g,
                 int kh, int kw, int n, int ih, int iw0, int ci0) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  const int Ci = g->Ci, Co = g->Co;
  for (int a = 0; a < kh; a++) {
    const int t = ih + g->top - a;
    if (t < 0 || t % g->sh) continue;
    const int oh = t / g->sh;
    if (oh >= g->Ho) continue;
    const float *dyrow = dy + (n * g->Ho + oh) * g->Wo * Co;
    /* Stride 1 inside the image: taps b = kw-1..0 read kw*Co consecutive values of dy, one loop
       (the packed filter stores taps in that order). */
    const int merged = !checked && g->sw == 1;
    const int bs = merged ? 1 : kw, run = merged ? kw * Co : Co;
    for (int b = 0; b < bs; b++) {
      const int tap = merged ? kw - 1 : b; /* the first tap this loop reads */
      const int u = iw0 + g->left - tap;   /* positions p read dy column (u + p*sw) / sw */
      if (u >= 0 && u % g->sw) continue;   /* the same phase for all four */
      if (u < 0 && (-u) % g->sw) continue;
      const float *d0, *d1 = 0, *d2 = 0, *d3 = 0;
      if (checked) {
        /* Columns u/sw, u/sw + 1, ...: skip the tap when all of them are outside dy. */
        const int last = u + (P - 1) * g->sw;
        if (last < 0 || (u >= 0 && u / g->sw >= g->Wo)) continue;
        d0 = dy_column(g, dyrow, u);
        if (P > 1) {
          d1 = dy_column(g, dyrow, u + g->sw);
          d2 = dy_column(g, dyrow, u + 2 * g->sw);
          d3 = dy_column(g, dyrow, u + 3 * g->sw);
        }
      } else {
        d0 = dyrow + (u / g->sw) * Co;
        d1 = d0 + Co;
        d2 = d0 + 2 * Co;
        d3 = d0 + 3 * Co;
      }
      const float *wp = packed + ci0 * kh * kw * Co + (a * kw + (kw - 1 - tap)) * Co * 4 * V;
      for (int k = 0; k < run; k++, wp += 4 * V) {
        const v128_t w0 = wasm_v128_load(wp);
        const v128_t w1 = V > 1 ? wasm_v128_load(wp + 4) : w0;
        v128_t v = wasm_v128_load32_splat(d0 + k);
        s0 = MADD(v, w0, s0);
        if (V > 1) t0 = MADD(v, w1, t0);
        if (P > 1) {
          v = wasm_v128_load32_splat(d1 + k);
          s1 = MADD(v, w0, s1);
          if (V > 1) t1 = MADD(v, w1, t1);
          v = wasm_v128_load32_splat(d2 + k);
          s2 = MADD(v, w0, s2);
          if (V > 1) t2 = MADD(v, w1, t2);
          v = wasm_v128_load32_splat(d3 + k);
          s3 = MADD(v, w0, s3);
          if (V > 1) t3 = MADD(v, w1, t3);
        }
      }
    }
  }
  float *xp = dx + ((n * g->H + ih) * g->W + iw0) * Ci + ci0;
  const int step = g->sw * Ci;
  if (V > 1) {
    wasm_v128_store(xp, s0);
    store_lanes(xp + 4, t0, L);
    if (P > 1) {
      wasm_v128_store(xp + step, s1);
      wasm_v128_store(xp + 2 * step, s2);
      wasm_v128_store(xp + 3 * step, s3);
      store_lanes(xp + step + 4, t1, L);
      store_lanes(xp + 2 * step + 4, t2, L);
      store_lanes(xp + 3 * step + 4, t3, L);
    }
  } else {
    store_lanes(xp, s0, L);
    if (P > 1) {
      store_lanes(xp + step, s1, L);
      store_lanes(xp + 2 * step, s2, L);
      store_lanes(xp + 3 * step, s3, L);
    }
  }
}

/* Input channels ci0..ci0+4V of the whole row, phase by phase, four positions at a time. */
INLINE void sweep(const int V, const int L, float *dx, const float *dy, const float *packed, const Geometry *g, int kh, int kw, int n, int ih,
                  int ci0) {
  const int sw = g->sw;
  for (int r = 0; r < sw && r < g->W; r++) {
    int iw = r;
    for (; iw + 3 * sw < g->W; iw += 4 * sw) {
      /* Four positions see only real columns when every tap's is >= 0 and the last one's is < Wo. */
      const int last = iw + 3 * sw;
      if (iw + g->left - (kw - 1) >= 0 && (last + g->left) / sw < g->Wo) tile(4, V, 0, L, dx, dy, packed, g, kh, kw, n, ih, iw, ci0);
      else tile(4, V, 1, L, dx, dy, packed, g, kh, kw, n, ih, iw, ci0);
    }
    for (; iw < g->W; iw += sw) tile(1, V, 1, L, dx, dy, packed, g, kh, kw, n, ih, iw, ci0);
  }
}

/*
 * The filter [kh][kw][Ci][Co] transposed and sliced for the tiles, each row's taps reversed: slices
 * of 8 input channels [kh][kw reversed][Co][8]; the last slice is 8 wide if more than 4 channels
 * remain for it, else 4, padded with zeros. The slice for channels from ci0 starts at ci0*kh*kw*Co.
 */
EXPORT(pack_filter_t)
void pack_filter_t(float *packed, const float *w, int kh, int kw, int Ci, int Co) {
  float *dst = packed;
  for (int ci = 0; ci < Ci; ci += 8) {
    const int width = Ci - ci > 4 ? 8 : 4;
    for (int a = 0; a < kh; a++)
      for (int b = kw - 1; b >= 0; b--)
        for (int co = 0; co < Co; co++)
          for (int j = 0; j < width; j++) *dst++ = ci + j < Ci ? w[((a * kw + b) * Ci + ci + j) * Co + co] : 0.0f;
  }
}

/*
 * Writes rows [row0, row1) of the flattened [N * H] rows of dx; `packed` is pack_filter_t(w),
 * `zeros` at least Co zero floats.
 */
EXPORT(conv2d_backprop_input)
void conv2d_backprop_input(float *dx, const float *dy, const float *packed, const float *zeros, int H, int W, int Ci, int Ho, int Wo, int Co, int kh,
                           int kw, int sh, int sw, int top, int left, int row0, int row1) {
  const Geometry g = {H, W, Ci, Ho, Wo, Co, sh, sw, top, left, zeros};
  for (int r = row0; r < row1; r++) {
    const int n = r / H, ih = r % H;
    for (int ci = 0; ci < Ci; ci += 8) {
      const int rest = Ci - ci; /* the last tile stores only the channels that exist */
      if (rest >= 8) sweep(2, 4, dx, dy, packed, &g, kh, kw, n, ih, ci);
      else if (rest > 4) sweep(2, rest - 4, dx, dy, packed, &g, kh, kw, n, ih, ci);
      else sweep(1, rest, dx, dy, packed, &g, kh, kw, n, ih, ci);
    }
  }
}
