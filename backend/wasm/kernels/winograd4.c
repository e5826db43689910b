/*
 * 3x3 stride-1 convolution by Winograd F(4x4, 3x3) (Lavin & Gray 2016, points 0, ±1, ±2, ∞), in
 * wasm SIMD: each 4x4 block of outputs comes from a 6x6 block of inputs, so the products over
 * channels are 36 matrices for 16 outputs — 2.25 multiply-adds per output and channel pair, against
 * 4 for F(2x2, 3x3) (winograd.c) and 9 for the direct conv. The price is rounding: the transforms'
 * coefficients (up to 5 in B, 8 in A, 1/24 in G) grow float32's error several times over F(2x2,
 * 3x3)'s; the tests bound it against the cpu backend. Same layout as winograd.c (winograd.h), and
 * the same use for the input gradient (winograd4_filter's `transposed`).
 *
 *   B' = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G  = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A' = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 */
#include "winograd.h"

/*
 * U = GgG' for every ci and the co of the 8-channel blocks [b0, b1) (threads take shares of them),
 * stored [36][Co/8][Ci][8]; g as in winograd_filter (`transposed`: the flipped, transposed filter of
 * the conv whose input gradient this is). Co a multiple of 8. Four co a v128, the same divisions and
 * sums lane by lane as one channel at a time, so bit for bit those; a block's U rows are written in
 * order (36 streams of 32 bytes a ci). One channel at a time, with its 36 stores a plane apart, it
 * took 43 ms for 512x512 channels (b64: more than the conv's other phases together), 9 divisions
 * per value; the forward and dx of ResNet-18's last stage run it on every call.
 */
EXPORT(winograd4_filter)
void winograd4_filter(float *U, const float *w, int Ci, int Co, int transposed, int b0, int b1) {
  const int plane = Co * Ci; /* floats per matrix xi */
  const v128_t four = wasm_f32x4_splat(4), six = wasm_f32x4_splat(6), twelve = wasm_f32x4_splat(12);
  const v128_t twentyfour = wasm_f32x4_splat(24);
  for (int b = b0; b < b1; b++)
    for (int ci = 0; ci < Ci; ci++)
      for (int h = 0; h < 8; h += 4) {
        const int co = 8 * b + h;
        v128_t g[3][3], t[6][3];
        for (int a = 0; a < 3; a++)
          for (int c = 0; c < 3; c++) {
            if (transposed) {
              const float *q = w + ((2 - a) * 3 + (2 - c)) * Co * Ci + co * Ci + ci;
              g[a][c] = wasm_f32x4_make(q[0], q[Ci], q[2 * Ci], q[3 * Ci]);
            } else
              g[a][c] = wasm_v128_load(w + (a * 3 + c) * Ci * Co + ci * Co + co);
          }
        /* G down each column, then along each row of the 6x3 result (each value's sums in the former scalar code's order). */
        for (int c = 0; c < 3; c++) {
          const v128_t g0 = g[0][c], g1 = g[1][c], g2 = g[2][c];
          t[0][c] = wasm_f32x4_div(g0, four);
          t[1][c] = wasm_f32x4_div(wasm_f32x4_neg(ADD(ADD(g0, g1), g2)), six);
          t[2][c] = wasm_f32x4_div(wasm_f32x4_neg(ADD(SUB(g0, g1), g2)), six);
          t[3][c] = ADD(ADD(wasm_f32x4_div(g0, twentyfour), wasm_f32x4_div(g1, twelve)), wasm_f32x4_div(g2, six));
          t[4][c] = ADD(SUB(wasm_f32x4_div(g0, twentyfour), wasm_f32x4_div(g1, twelve)), wasm_f32x4_div(g2, six));
          t[5][c] = g2;
        }
        float *u = U + (b * Ci + ci) * 8 + h;
        for (int i = 0; i < 6; i++) {
          const v128_t g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
          wasm_v128_store(u + (i * 6 + 0) * plane, wasm_f32x4_div(g0, four));
          wasm_v128_store(u + (i * 6 + 1) * plane, wasm_f32x4_div(wasm_f32x4_neg(ADD(ADD(g0, g1), g2)), six));
          wasm_v128_store(u + (i * 6 + 2) * plane, wasm_f32x4_div(wasm_f32x4_neg(ADD(SUB(g0, g1), g2)), six));
          wasm_v128_store(u + (i * 6 + 3) * plane,
                          ADD(ADD(wasm_f32x4_div(g0, twentyfour), wasm_f32x4_div(g1, twelve)), wasm_f32x4_div(g2, six)));
          wasm_v128_store(u + (i * 6 + 4) * plane,
                          ADD(SUB(wasm_f32x4_div(g0, twentyfour), wasm_f32x4_div(g1, twelve)), wasm_f32x4_div(g2, six)));
          wasm_v128_store(u + (i * 6 + 5) * plane, g2);
        }
      }
}

/* B' along one line of 6 values (the shared sums first). */
#define BT6(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5)                  \
  {                                                                          \
    const v128_t four = wasm_f32x4_splat(4), two = wasm_f32x4_splat(2);      \
    const v128_t a = SUB(d4, MUL(four, d2)), b = SUB(d3, MUL(four, d1));     \
    const v128_t c = SUB(d4, d2), e = MUL(two, SUB(d3, d1));                 \
    o0 = ADD(SUB(MUL(four, d0), MUL(wasm_f32x4_splat(5), d2)), d4);          \
    o1 = ADD(a, b);                                                          \
    o2 = SUB(a, b);                                                          \
    o3 = ADD(c, e);                                                          \
    o4 = SUB(c, e);                                                          \
    o5 = ADD(SUB(MUL(four, d1), MUL(wasm_f32x4_splat(5), d3)), d5);          \
  }

/*
 * V[xi][t][ci..ci+4) for every ci of one tile from its 6x6 input block at `p`: value (i, j) of
 * channel ci at p[i * rs + j * Ci + ci]. v: the tile's channels 0..3 in matrix 0, each next 4
 * channels `step` floats on (winograd.h's layouts).
 */
INLINE void transform_block(float *v, int plane, int step, int spread, const float *p, int rs, int Ci) {
  for (int ci = 0; ci < Ci; ci += 4, v += step) {
    v128_t r[6][6];
    /* B' along each row of the block, then down each column. */
#pragma clang loop unroll(full)
    for (int i = 0; i < 6; i++) {
      const float *q = p + i * rs + ci;
      BT6(wasm_v128_load(q), wasm_v128_load(q + Ci), wasm_v128_load(q + 2 * Ci), wasm_v128_load(q + 3 * Ci),
          wasm_v128_load(q + 4 * Ci), wasm_v128_load(q + 5 * Ci), r[i][0], r[i][1], r[i][2], r[i][3], r[i][4], r[i][5])
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 6; j++) {
      v128_t o0, o1, o2, o3, o4, o5;
      BT6(r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j], o0, o1, o2, o3, o4, o5)
      store_v(v + (0 * 6 + j) * plane, o0, spread);
      store_v(v + (1 * 6 + j) * plane, o1, spread);
      store_v(v + (2 * 6 + j) * plane, o2, spread);
      store_v(v + (3 * 6 + j) * plane, o3, spread);
      store_v(v + (4 * 6 + j) * plane, o4, spread);
      store_v(v + (5 * 6 + j) * plane, o5, spread);
    }
  }
}

/*
 * The transformed input of a tile to v (as transform_block's), whose 6x6 block starts at row ih0,
 * column iw0 of image n. A block inside the image is read in place; one over its border is first
 * copied to `block` (36 * Ci floats), zeros outside.
 */
INLINE void input_tile6(float *v, int plane, int step, int spread, float *block, const float *x, int H, int W, int Ci, int n, int ih0, int iw0) {
  const float *img = x + n * H * W * Ci;
  if (ih0 >= 0 && iw0 >= 0 && ih0 + 6 <= H && iw0 + 6 <= W) {
    transform_block(v, plane, step, spread, img + (ih0 * W + iw0) * Ci, W * Ci, Ci);
    return;
  }
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      const int ih = ih0 + i, iw = iw0 + j;
      float *dst = block + (i * 6 + j) * Ci;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
        const float *src = img + (ih * W + iw) * Ci;
        for (int ci = 0; ci < Ci; ci += 4) wasm_v128_store(dst + ci, wasm_v128_load(src + ci));
      } else
        zero(dst, Ci);
    }
  transform_block(v, plane, step, spread, block, 6 * Ci, Ci);
}

/*
 * The transformed input of one work unit's tiles (`rows` rows of tiles from tile row `first`, tilesW
 * each) to V in the forward layout (winograd.h), padding tiles up to T zeros, so the products read
 * no stale (maybe subnormal) values. Called with `spread` a constant: each layout compiles apart.
 */
INLINE void input_unit6(float *V, int T, int spread, float *block, const float *x, int first, int rows, int tilesW, int tilesH, int H,
                        int W, int Ci, int top, int left) {
  for (int k = 0; k < rows; k++) {
    const int n = (first + k) / tilesH, th = first + k - n * tilesH;
    for (int tw = 0; tw < tilesW; tw++)
      input_tile6(v_forward(V, k * tilesW + tw, Ci, spread), PLANE(T, Ci), v_step(spread), spread, block, x, H, W, Ci, n, 4 * th - top, 4 * tw - left);
  }
  for (int t = rows * tilesW; t < T; t++) zero_tile(v_forward(V, t, Ci, spread), PLANE(T, Ci), v_step(spread), spread, Ci, 36);
}

/* A' along one line of 6 values. */
#define AT6(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3)                       \
  {                                                                       \
    const v128_t s12 = ADD(m1, m2), d12 = SUB(m1, m2);                    \
    const v128_t s34 = ADD(m3, m4), d34 = SUB(m3, m4);                    \
    o0 = ADD(ADD(m0, s12), s34);                                          \
    o1 = ADD(d12, MUL(wasm_f32x4_splat(2), d34));                         \
    o2 = ADD(s12, MUL(wasm_f32x4_splat(4), s34));                         \
    o3 = ADD(ADD(d12, MUL(wasm_f32x4_splat(8), d34)), m5);                \
  }

/* A'MA + bias for tile t: its 4x4 outputs at row oh0, column ow0 of image n (those inside the output). */
INLINE void output_tile6(float *y, const float *M, const float *bias, int T, int t, int Ho, int Wo, int Co, int n, int oh0, int ow0) {
  const int plane = PLANE(T, Co);
  const float *m = M + t * Co;
  const int rows = Ho - oh0 < 4 ? Ho - oh0 : 4, cols = Wo - ow0 < 4 ? Wo - ow0 : 4;
  float *y0 = y + ((n * Ho + oh0) * Wo + ow0) * Co;
  for (int co = 0; co < Co; co += 4) {
    v128_t a[6][4];
    /* A' along each row of M, then down the four columns. */
#pragma clang loop unroll(full)
    for (int i = 0; i < 6; i++) {
      const float *q = m + i * 6 * plane + co;
      AT6(wasm_v128_load(q), wasm_v128_load(q + plane), wasm_v128_load(q + 2 * plane), wasm_v128_load(q + 3 * plane),
          wasm_v128_load(q + 4 * plane), wasm_v128_load(q + 5 * plane), a[i][0], a[i][1], a[i][2], a[i][3])
    }
    const v128_t b = wasm_v128_load(bias + co);
#pragma clang loop unroll(full)
    for (int j = 0; j < 4; j++) {
      v128_t o0, o1, o2, o3;
      AT6(a[0][j], a[1][j], a[2][j], a[3][j], a[4][j], a[5][j], o0, o1, o2, o3)
      if (j >= cols) continue;
      float *q = y0 + j * Co + co;
      wasm_v128_store(q, ADD(o0, b));
      if (rows > 1) wasm_v128_store(q + Wo * Co, ADD(o1, b));
      if (rows > 2) wasm_v128_store(q + 2 * Wo * Co, ADD(o2, b));
      if (rows > 3) wasm_v128_store(q + 3 * Wo * Co, ADD(o3, b));
    }
  }
}

/*
 * y[n][oh][ow][co] = bias[co] + sum over a, b < 3 and ci of x[n][oh - top + a][ow - left + b][ci] * g(a, b, ci, co),
 * U = winograd4_filter(g). Work unit r is R consecutive rows of tiles (of the N * ceil(Ho/4) rows);
 * `scratch` (this thread's own) holds V, M and a border block for T = R * ceil(Wo/4) tiles rounded
 * up to 4: 36 * (T * (Ci + Co) + 32 + Ci) floats. Ci must be a multiple of 4, Co of 8; `bias` Co
 * floats (zeros for none). Then the epilogue (common.h): + `res` (same shape as y; null for none), ReLU when
 * `relu`, on each row of tiles while it is in cache.
 */
EXPORT(winograd4_conv)
void winograd4_conv(float *scratch, float *y, const float *x, const float *U, const float *bias, const float *res, int relu, int N,
                    int H, int W, int Ci, int Ho, int Wo, int Co, int top, int left, int R, int r0, int r1) {
  const int tilesW = (Wo + 3) / 4, tilesH = (Ho + 3) / 4, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *M = V + 36 * PLANE(T, Ci), *block = M + 36 * PLANE(T, Co);
  const int spread = Co >= SPREAD_FROM;
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first;
    if (spread)
      input_unit6(V, T, 1, block, x, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    else
      input_unit6(V, T, 0, block, x, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    multiply(M, V, U, 36, T, Ci, Co, spread);
    for (int k = 0; k < rows; k++) {
      const int n = (first + k) / tilesH, th = first + k - n * tilesH;
      for (int tw = 0; tw < tilesW; tw++) output_tile6(y, M, bias, T, k * tilesW + tw, Ho, Wo, Co, n, 4 * th, 4 * tw);
      const int at = (n * Ho + 4 * th) * Wo * Co, count = (Ho - 4 * th < 4 ? Ho - 4 * th : 4) * Wo * Co;
      epilogue(y + at, res ? res + at : 0, count, relu);
    }
  }
}

/*
 * Filter gradient by the same transforms, transposed: with V = B'dB of each tile's 6x6 input block
 * and D = A dy A' of its 4x4 block of dy, dW = G' (sum over tiles of V (.) D) G: 36 matrix products
 * [Ci x tiles] by [tiles x Co] accumulated per chunk of tiles, then winograd4_filter_grad_out once.
 */

/* A along one line of 4 values (A = the transpose of A' above). */
#define A4(y0, y1, y2, y3, o0, o1, o2, o3, o4, o5)                                  \
  {                                                                                 \
    const v128_t e = ADD(y0, y2), f = ADD(y1, y3);                                  \
    const v128_t g = ADD(y0, MUL(wasm_f32x4_splat(4), y2));                         \
    const v128_t h = ADD(MUL(wasm_f32x4_splat(2), y1), MUL(wasm_f32x4_splat(8), y3)); \
    o0 = y0;                                                                        \
    o1 = ADD(e, f);                                                                 \
    o2 = SUB(e, f);                                                                 \
    o3 = ADD(g, h);                                                                 \
    o4 = SUB(g, h);                                                                 \
    o5 = y3;                                                                        \
  }

/*
 * D[xi][t][co..co+4) for every co of one tile from its 4x4 block of dy at `p`: (i, j) at
 * p[i * rs + j * Co]; d = D + 8 * t (winograd.h's layout, T tiles).
 */
INLINE void transform_gradient(float *d, int plane, int T, const float *p, int rs, int Co) {
  for (int co = 0; co < Co; co += 4) {
    v128_t r[4][6];
#pragma clang loop unroll(full)
    for (int i = 0; i < 4; i++) {
      const float *q = p + i * rs + co;
      A4(wasm_v128_load(q), wasm_v128_load(q + Co), wasm_v128_load(q + 2 * Co), wasm_v128_load(q + 3 * Co), r[i][0], r[i][1],
         r[i][2], r[i][3], r[i][4], r[i][5])
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 6; j++) {
      v128_t o0, o1, o2, o3, o4, o5;
      A4(r[0][j], r[1][j], r[2][j], r[3][j], o0, o1, o2, o3, o4, o5)
      wasm_v128_store(d + (0 * 6 + j) * plane + d_at(co, T), o0);
      wasm_v128_store(d + (1 * 6 + j) * plane + d_at(co, T), o1);
      wasm_v128_store(d + (2 * 6 + j) * plane + d_at(co, T), o2);
      wasm_v128_store(d + (3 * 6 + j) * plane + d_at(co, T), o3);
      wasm_v128_store(d + (4 * 6 + j) * plane + d_at(co, T), o4);
      wasm_v128_store(d + (5 * 6 + j) * plane + d_at(co, T), o5);
    }
  }
}

/* The transformed dy of tile t (its 4x4 block at row oh0, column ow0 of image n; `block`: 16 * Co floats for a block over the border). */
INLINE void gradient_tile4(float *D, int T, int t, float *block, const float *dy, int Ho, int Wo, int Co, int n, int oh0, int ow0) {
  const int plane = PLANE(T, Co);
  const float *img = dy + n * Ho * Wo * Co;
  if (oh0 + 4 <= Ho && ow0 + 4 <= Wo) {
    transform_gradient(D + 8 * t, plane, T, img + (oh0 * Wo + ow0) * Co, Wo * Co, Co);
    return;
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      float *dst = block + (i * 4 + j) * Co;
      if (oh0 + i < Ho && ow0 + j < Wo) {
        const float *src = img + ((oh0 + i) * Wo + ow0 + j) * Co;
        for (int co = 0; co < Co; co += 4) wasm_v128_store(dst + co, wasm_v128_load(src + co));
      } else
        zero(dst, Co);
    }
  transform_gradient(D + 8 * t, plane, T, block, 4 * Co, Co);
}

/*
 * Writes to `acc` the sums over units [r0, r1) (one chunk: the caller adds the chunks' sums in
 * chunk order) of the matrices [x0, x1) of the 36 (Ci * Co floats each; the others are left alone:
 * threads can share one chunk's matrices, each sum the same whoever computes it); `scratch` (this
 * thread's own) holds V, D and a border block: 36 * (T * (Ci + Co) + 32 + Ci) + 16 * Co floats.
 * Geometry as winograd4_conv's (x the conv's input, dy its output's gradient); Ci and Co multiples
 * of 4 and 8.
 */
EXPORT(winograd4_filter_grad)
void winograd4_filter_grad(float *acc, float *scratch, const float *x, const float *dy, int N, int H, int W, int Ci, int Ho, int Wo,
                           int Co, int top, int left, int R, int x0, int x1, int r0, int r1) {
  const int tilesW = (Wo + 3) / 4, tilesH = (Ho + 3) / 4, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *D = V + 36 * PLANE(T, Ci), *block = D + 36 * PLANE(T, Co);
  if (r0 >= r1) zero(acc + x0 * Ci * Co, (x1 - x0) * Ci * Co); /* else the first unit's sums start from zero */
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first, count = rows * tilesW;
    for (int k = 0; k < rows; k++) {
      const int n = (first + k) / tilesH, th = first + k - n * tilesH;
      for (int tw = 0; tw < tilesW; tw++) {
        const int t = k * tilesW + tw;
        input_tile6(V + 4 * t, PLANE(T, Ci), 4 * T, 0, block, x, H, W, Ci, n, 4 * th - top, 4 * tw - left);
        gradient_tile4(D, T, t, block, dy, Ho, Wo, Co, n, 4 * th, 4 * tw);
      }
    }
    for (int t = count; t < T; t++) {
      zero_tile(V + 4 * t, PLANE(T, Ci), 4 * T, 0, Ci, 36);
      zero_gradient_tile(D + 8 * t, PLANE(T, Co), T, Co, 36);
    }
    /* `fresh` a constant at each call: the loop compiles without the test (a branch there cost 4-6% at 16-64 channels) */
    if (r == r0)
      accumulate(acc + x0 * Ci * Co, V + x0 * PLANE(T, Ci), D + x0 * PLANE(T, Co), x1 - x0, T, Ci, Co, 1);
    else
      accumulate(acc + x0 * Ci * Co, V + x0 * PLANE(T, Ci), D + x0 * PLANE(T, Co), x1 - x0, T, Ci, Co, 0);
  }
}

/* G' along one line of 6 values: G' = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0; 0 -1/6 -1/6 1/6 1/6 1]. */
#define GT6(m0, m1, m2, m3, m4, m5, o0, o1, o2)                                                  \
  {                                                                                              \
    const v128_t s12 = ADD(m1, m2), d12 = SUB(m1, m2), s34 = ADD(m3, m4), d34 = SUB(m3, m4);     \
    const v128_t sixth = wasm_f32x4_splat(1.0f / 6);                                             \
    o0 = ADD(SUB(MUL(wasm_f32x4_splat(0.25f), m0), MUL(sixth, s12)), MUL(wasm_f32x4_splat(1.0f / 24), s34)); \
    o1 = SUB(MUL(wasm_f32x4_splat(1.0f / 12), d34), MUL(sixth, d12));                            \
    o2 = ADD(MUL(sixth, SUB(s34, s12)), m5);                                                     \
  }

/* dW[a][b][ci][co] = (G' M G)[a][b] for M = acc[.][ci][co] (36 planes of Ci * Co). */
EXPORT(winograd4_filter_grad_out)
void winograd4_filter_grad_out(float *dW, const float *acc, int Ci, int Co) {
  const int plane = Ci * Co;
  for (int k = 0; k < plane; k += 4) {
    v128_t t[3][6];
    /* G' down each column j of M, then along the three rows. */
#pragma clang loop unroll(full)
    for (int j = 0; j < 6; j++) {
      const float *q = acc + j * plane + k;
      GT6(wasm_v128_load(q), wasm_v128_load(q + 6 * plane), wasm_v128_load(q + 12 * plane), wasm_v128_load(q + 18 * plane),
          wasm_v128_load(q + 24 * plane), wasm_v128_load(q + 30 * plane), t[0][j], t[1][j], t[2][j])
    }
#pragma clang loop unroll(full)
    for (int a = 0; a < 3; a++) {
      v128_t o0, o1, o2;
      GT6(t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5], o0, o1, o2)
      wasm_v128_store(dW + (a * 3 + 0) * plane + k, o0);
      wasm_v128_store(dW + (a * 3 + 1) * plane + k, o1);
      wasm_v128_store(dW + (a * 3 + 2) * plane + k, o2);
    }
  }
}
