/*
 * 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3), in wasm SIMD.
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 block of inputs: with V = B'dB the input
 * transform of that block (per input channel) and U = GgG' the transform of the 3x3 filter (per
 * channel pair), the 16 products V[xi] * U[xi] summed over input channels give M, and the output
 * transform A'MA gives the 2x2 outputs. Per output that is 16/4 = 4 multiply-adds per channel pair
 * instead of 9: the sum over channels is 16 small matrix products, [tiles x Ci] by [Ci x Co], run on
 * the same 4 x 8 register tile as the direct kernel. Wasm SIMD has no FMA, so the direct kernels sit
 * at the machine's 128-bit multiply-add peak; fewer multiplies is the one way past it.
 *
 * The same kernel serves the input gradient of a 3x3 stride-1 conv, which is such a conv of dy with
 * the filter flipped and transposed (winograd_filter's `transposed`).
 *
 *   B' = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A' = [1 1 1 0; 0 1 -1 -1]
 */
#include "winograd.h"

/*
 * U = GgG' for every (ci, co), stored [16][Co/8][Ci][8] so that one 8-channel slice of one of the 16
 * matrices is contiguous. g(a, b, ci, co) = w[a][b][ci][co] (w: [3][3][Ci][Co]), or with
 * `transposed`, w[2-a][2-b][co][ci] (w: [3][3][Co][Ci]: the filter of the conv whose dx this is).
 * Co must be a multiple of 8. Scalar: it runs once per call on Ci*Co*9 values.
 */
EXPORT(winograd_filter)
void winograd_filter(float *U, const float *w, int Ci, int Co, int transposed) {
  for (int ci = 0; ci < Ci; ci++)
    for (int co = 0; co < Co; co++) {
      float g[3][3], t[4][3];
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
          g[a][b] = transposed ? w[((2 - a) * 3 + (2 - b)) * Co * Ci + co * Ci + ci] : w[(a * 3 + b) * Ci * Co + ci * Co + co];
      for (int b = 0; b < 3; b++) {
        t[0][b] = g[0][b];
        t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
        t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
        t[3][b] = g[2][b];
      }
      float *u = U + ((co >> 3) * Ci + ci) * 8 + (co & 7);
      const int plane = Co * Ci; /* floats per matrix xi */
      for (int i = 0; i < 4; i++) {
        u[(i * 4 + 0) * plane] = t[i][0];
        u[(i * 4 + 1) * plane] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[(i * 4 + 2) * plane] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[(i * 4 + 3) * plane] = t[i][2];
      }
    }
}

/* B' along one line of 4 values. */
#define BT(a, b, c, d, o0, o1, o2, o3) \
  o0 = SUB(a, c);                      \
  o1 = ADD(b, c);                      \
  o2 = SUB(c, b);                      \
  o3 = SUB(b, d);


/*
 * V[xi][t][ci..ci+4) for every ci of a tile, whose 4x4 input block starts at row ih0, column iw0 of
 * image n (rows and columns outside the image read `zeros`). v: the tile's channels 0..3 in matrix
 * 0, each next 4 channels `step` floats on (winograd.h's layouts).
 */
INLINE void input_tile(float *v, int plane, int step, int spread, const float *x, const float *zeros, int H, int W, int Ci, int n, int ih0, int iw0) {
  const float *p00, *p01, *p02, *p03, *p10, *p11, *p12, *p13, *p20, *p21, *p22, *p23, *p30, *p31, *p32, *p33;
#define ROW(i)                                                                           \
  {                                                                                      \
    const int ih = ih0 + i;                                                              \
    const int in = ih >= 0 && ih < H;                                                    \
    const float *r = x + (n * H + ih) * W * Ci;                                          \
    p##i##0 = in && iw0 >= 0 && iw0 < W ? r + iw0 * Ci : zeros;                          \
    p##i##1 = in && iw0 + 1 >= 0 && iw0 + 1 < W ? r + (iw0 + 1) * Ci : zeros;            \
    p##i##2 = in && iw0 + 2 >= 0 && iw0 + 2 < W ? r + (iw0 + 2) * Ci : zeros;            \
    p##i##3 = in && iw0 + 3 >= 0 && iw0 + 3 < W ? r + (iw0 + 3) * Ci : zeros;            \
  }
  ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
  for (int ci = 0; ci < Ci; ci += 4, v += step) {
    v128_t r00, r01, r02, r03, r10, r11, r12, r13, r20, r21, r22, r23, r30, r31, r32, r33;
    /* B' along each row of the block, then down each column. */
#define LOADROW(i) \
  BT(wasm_v128_load(p##i##0 + ci), wasm_v128_load(p##i##1 + ci), wasm_v128_load(p##i##2 + ci), wasm_v128_load(p##i##3 + ci), r##i##0, r##i##1, r##i##2, r##i##3)
    LOADROW(0) LOADROW(1) LOADROW(2) LOADROW(3)
#undef LOADROW
#define COLUMN(j)                                                \
  {                                                              \
    v128_t o0, o1, o2, o3;                                       \
    BT(r0##j, r1##j, r2##j, r3##j, o0, o1, o2, o3)               \
    store_v(v + (0 * 4 + j) * plane, o0, spread);           \
    store_v(v + (1 * 4 + j) * plane, o1, spread);           \
    store_v(v + (2 * 4 + j) * plane, o2, spread);           \
    store_v(v + (3 * 4 + j) * plane, o3, spread);           \
  }
    COLUMN(0) COLUMN(1) COLUMN(2) COLUMN(3)
#undef COLUMN
  }
}

/*
 * The transformed input of one work unit's tiles (`rows` rows of tiles from tile row `first`, tilesW
 * each; tile t = k * tilesW + tw is column tw of row first + k: one division per row) to V in the
 * forward layout (winograd.h), padding tiles up to T zeros, so the products read no stale (maybe
 * subnormal) values. Called with `spread` a constant: each layout compiles apart.
 */
INLINE void input_unit(float *V, int T, int spread, const float *x, const float *zeros, int first, int rows, int tilesW, int tilesH,
                       int H, int W, int Ci, int top, int left) {
  for (int k = 0; k < rows; k++) {
    const int n = (first + k) / tilesH, th = first + k - n * tilesH;
    for (int tw = 0; tw < tilesW; tw++)
      input_tile(v_forward(V, k * tilesW + tw, Ci, spread), PLANE(T, Ci), v_step(spread), spread, x, zeros, H, W, Ci, n, 2 * th - top, 2 * tw - left);
  }
  for (int t = rows * tilesW; t < T; t++) zero_tile(v_forward(V, t, Ci, spread), PLANE(T, Ci), v_step(spread), spread, Ci, 16);
}

/* A'MA + bias for tile t: its 2x2 outputs at row oh0, column ow0 of image n (those inside the output). */
INLINE void output_tile(float *y, const float *M, const float *bias, int T, int t, int Ho, int Wo, int Co, int n, int oh0, int ow0) {
  const int plane = PLANE(T, Co);
  const float *m = M + t * Co;
  const int right = ow0 + 1 < Wo, below = oh0 + 1 < Ho;
  float *y0 = y + ((n * Ho + oh0) * Wo + ow0) * Co, *y1 = y0 + Wo * Co;
  for (int co = 0; co < Co; co += 4) {
    v128_t a00, a01, a10, a11, a20, a21, a30, a31;
    /* A' along each row of M, then down the two columns. */
#define ROW(i)                                                                                       \
  {                                                                                                  \
    const v128_t m0 = wasm_v128_load(m + (i * 4 + 0) * plane + co), m1 = wasm_v128_load(m + (i * 4 + 1) * plane + co); \
    const v128_t m2 = wasm_v128_load(m + (i * 4 + 2) * plane + co), m3 = wasm_v128_load(m + (i * 4 + 3) * plane + co); \
    a##i##0 = ADD(ADD(m0, m1), m2);                                                                  \
    a##i##1 = SUB(SUB(m1, m2), m3);                                                                  \
  }
    ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
    const v128_t b = wasm_v128_load(bias + co);
    wasm_v128_store(y0 + co, ADD(ADD(ADD(a00, a10), a20), b));
    if (right) wasm_v128_store(y0 + Co + co, ADD(ADD(ADD(a01, a11), a21), b));
    if (below) {
      wasm_v128_store(y1 + co, ADD(SUB(SUB(a10, a20), a30), b));
      if (right) wasm_v128_store(y1 + Co + co, ADD(SUB(SUB(a11, a21), a31), b));
    }
  }
}

/*
 * y[n][oh][ow][co] = bias[co] + sum over a, b < 3 and ci of x[n][oh - top + a][ow - left + b][ci] * g(a, b, ci, co),
 * U = winograd_filter(g). Work unit r is R consecutive rows of tiles (of the N * ceil(Ho/2) rows);
 * `scratch` (this thread's own) holds V and M for T = R * ceil(Wo/2) tiles rounded up to 4:
 * 16 * (T * (Ci + Co) + 32) floats. Ci must be a multiple of 4, Co of 8; `zeros` at least
 * max(Ci, Co) floats; `bias` Co floats (the zeros for none). Then the epilogue (common.h): + `res`
 * (same shape as y; null for none), ReLU when `relu`, on each row of tiles while it is in cache.
 */
EXPORT(winograd_conv)
void winograd_conv(float *scratch, float *y, const float *x, const float *U, const float *zeros, const float *bias, const float *res,
                   int relu, int N, int H, int W, int Ci, int Ho, int Wo, int Co, int top, int left, int R, int r0, int r1) {
  const int tilesW = (Wo + 1) / 2, tilesH = (Ho + 1) / 2, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *M = scratch + 16 * PLANE(T, Ci);
  const int spread = Co >= SPREAD_FROM;
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first;
    if (spread)
      input_unit(V, T, 1, x, zeros, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    else
      input_unit(V, T, 0, x, zeros, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    multiply(M, V, U, 16, T, Ci, Co, spread);
    for (int k = 0; k < rows; k++) {
      const int n = (first + k) / tilesH, th = first + k - n * tilesH;
      for (int tw = 0; tw < tilesW; tw++) output_tile(y, M, bias, T, k * tilesW + tw, Ho, Wo, Co, n, 2 * th, 2 * tw);
      const int at = (n * Ho + 2 * th) * Wo * Co, count = (Ho - 2 * th < 2 ? Ho - 2 * th : 2) * Wo * Co;
      epilogue(y + at, res ? res + at : 0, count, relu);
    }
  }
}

/*
 * Filter gradient by the same transforms, transposed: with V = B'dB of each tile's input block and
 * D = A dy A' of its 2x2 block of dy, dW = G' (sum over tiles of V (.) D) G. The sum is again 16
 * matrix products, [Ci x tiles] by [tiles x Co], accumulated per chunk of tiles; winograd_filter_grad_out
 * applies G' . G once at the end.
 */

/* D[xi][t][co..co+4) for every co of tile t, from dy's 2x2 block at row oh0, column ow0 of image n (winograd.h's layout). */
INLINE void gradient_tile(float *D, int T, int t, const float *dy, const float *zeros, int Ho, int Wo, int Co, int n, int oh0, int ow0) {
  const int right = ow0 + 1 < Wo, below = oh0 + 1 < Ho;
  const float *q00 = dy + ((n * Ho + oh0) * Wo + ow0) * Co;
  const float *q01 = right ? q00 + Co : zeros, *q10 = below ? q00 + Wo * Co : zeros;
  const float *q11 = right && below ? q00 + (Wo + 1) * Co : zeros;
  const int plane = PLANE(T, Co);
  float *d = D + 8 * t;
  for (int co = 0; co < Co; co += 4) {
    float *dc = d + d_at(co, T);
    const v128_t y00 = wasm_v128_load(q00 + co), y01 = wasm_v128_load(q01 + co);
    const v128_t y10 = wasm_v128_load(q10 + co), y11 = wasm_v128_load(q11 + co);
    /* A along each row of the block (1 0; 1 1; 1 -1; 0 -1), then down the four columns. */
    const v128_t u00 = y00, u01 = ADD(y00, y01), u02 = SUB(y00, y01), u03 = wasm_f32x4_neg(y01);
    const v128_t u10 = y10, u11 = ADD(y10, y11), u12 = SUB(y10, y11), u13 = wasm_f32x4_neg(y11);
#define COLUMN(j)                                                   \
  wasm_v128_store(dc + (0 * 4 + j) * plane, u0##j);                 \
  wasm_v128_store(dc + (1 * 4 + j) * plane, ADD(u0##j, u1##j));     \
  wasm_v128_store(dc + (2 * 4 + j) * plane, SUB(u0##j, u1##j));     \
  wasm_v128_store(dc + (3 * 4 + j) * plane, wasm_f32x4_neg(u1##j));
    COLUMN(0) COLUMN(1) COLUMN(2) COLUMN(3)
#undef COLUMN
  }
}

/*
 * Writes to `acc` the 16 * Ci * Co sums over units [r0, r1) (one chunk: the caller adds the chunks'
 * sums in chunk order); `scratch` (this thread's own) holds V and D, 16 * (T * (Ci + Co) + 32)
 * floats. Geometry as winograd_conv's (x is the conv's input, dy its output's gradient).
 */
EXPORT(winograd_filter_grad)
void winograd_filter_grad(float *acc, float *scratch, const float *x, const float *dy, const float *zeros, int N, int H, int W, int Ci,
                          int Ho, int Wo, int Co, int top, int left, int R, int r0, int r1) {
  const int tilesW = (Wo + 1) / 2, tilesH = (Ho + 1) / 2, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *D = V + 16 * PLANE(T, Ci);
  if (r0 >= r1) zero(acc, 16 * Ci * Co); /* else the first unit's sums start from zero */
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first, count = rows * tilesW;
    for (int k = 0; k < rows; k++) {
      const int n = (first + k) / tilesH, th = first + k - n * tilesH;
      for (int tw = 0; tw < tilesW; tw++) {
        const int t = k * tilesW + tw;
        input_tile(V + 4 * t, PLANE(T, Ci), 4 * T, 0, x, zeros, H, W, Ci, n, 2 * th - top, 2 * tw - left);
        gradient_tile(D, T, t, dy, zeros, Ho, Wo, Co, n, 2 * th, 2 * tw);
      }
    }
    for (int t = count; t < T; t++) {
      zero_tile(V + 4 * t, PLANE(T, Ci), 4 * T, 0, Ci, 16);
      zero_gradient_tile(D + 8 * t, PLANE(T, Co), T, Co, 16);
    }
    if (r == r0) /* `fresh` a constant at each call (as winograd4_filter_grad's) */
      accumulate(acc, V, D, 16, T, Ci, Co, 1);
    else
      accumulate(acc, V, D, 16, T, Ci, Co, 0);
  }
}

/* dW[a][b][ci][co] = (G' M G)[a][b] for M = acc[.][ci][co]; G' = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]. */
EXPORT(winograd_filter_grad_out)
void winograd_filter_grad_out(float *dW, const float *acc, int Ci, int Co) {
  const int plane = Ci * Co;
  const v128_t half = wasm_f32x4_splat(0.5f);
  for (int k = 0; k < plane; k += 4) {
    v128_t t00, t01, t02, t03, t10, t11, t12, t13, t20, t21, t22, t23;
    /* G' down each column j of M, then along the rows. */
#define COLUMN(j)                                                                                          \
  {                                                                                                        \
    const v128_t m0 = wasm_v128_load(acc + (0 * 4 + j) * plane + k), m1 = wasm_v128_load(acc + (1 * 4 + j) * plane + k); \
    const v128_t m2 = wasm_v128_load(acc + (2 * 4 + j) * plane + k), m3 = wasm_v128_load(acc + (3 * 4 + j) * plane + k); \
    const v128_t p = wasm_f32x4_mul(half, ADD(m1, m2));                                                   \
    t0##j = ADD(m0, p);                                                                                    \
    t1##j = wasm_f32x4_mul(half, SUB(m1, m2));                                                             \
    t2##j = ADD(p, m3);                                                                                    \
  }
    COLUMN(0) COLUMN(1) COLUMN(2) COLUMN(3)
#undef COLUMN
#define ROW(a)                                                                      \
  {                                                                                 \
    const v128_t p = wasm_f32x4_mul(half, ADD(t##a##1, t##a##2));                  \
    wasm_v128_store(dW + (a * 3 + 0) * plane + k, ADD(t##a##0, p));                 \
    wasm_v128_store(dW + (a * 3 + 1) * plane + k, wasm_f32x4_mul(half, SUB(t##a##1, t##a##2))); \
    wasm_v128_store(dW + (a * 3 + 2) * plane + k, ADD(p, t##a##3));                 \
  }
    ROW(0) ROW(1) ROW(2)
#undef ROW
  }
}
