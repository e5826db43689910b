/*
 * Filter gradient of a 2-D convolution (NHWC input, [kh, kw, Cin, Cout] filter), in wasm SIMD.
 *
 *   dW[a][b][ci][co] = sum over n, oh, ow of  x[n][oh*sh - top + a][ow*sw - left + b][ci] * dy[n][oh][ow][co]
 *
 * For each filter tap this is a GEMM whose long dimension runs over output positions, taken in
 * blocks of output rows (across images). A block's operands are first packed the way the register
 * tiles read them (as winograd.h's filter gradient): dy as [Co/8][P][8] (then [P][4] for a 4-channel
 * slice), once per range of columns the taps see, and x for each tap as [Ci/4][P][4], P the
 * positions of the block. A tile of 4 input x 8 output channels then reads 16 and 32 contiguous
 * bytes a position. In place (still so below 32 input channels: tile_in_place), it read 16 bytes
 * of x and 32 of dy from cache lines sw*Ci*4 and Co*4 bytes apart, most of each line unused, and a
 * block stopped at each image: 16 positions in ResNet-18's last stage, each block reading and
 * writing all 9*256*512 sums.
 *
 * Every sum runs over the same positions in the same order as before the packing (rows, then
 * columns, the padding skipped): the same bits.
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
/* The same for rows: output rows oh of an image whose input row oh*sh - top + a is inside [0, H). */
INLINE int first_row(const Geometry *g, int a) {
  int need = g->top - a;
  return need <= 0 ? 0 : (need + g->sh - 1) / g->sh;
}
INLINE int end_row(const Geometry *g, int a) {
  int limit = g->H - 1 + g->top - a;
  if (limit < 0) return 0;
  int end = limit / g->sh + 1;
  return end < g->Ho ? end : g->Ho;
}

/*
 * A tap's positions in a block of flattened rows [r0, r1), `cw` columns a row: per image the rows
 * [lo, hi) it sees, packed position (r - r0) * cw + column. Runs of consecutive positions: one for
 * the whole block when the tap sees every row, else one per image. The body (the last arguments)
 * sees p0, p1.
 */
#define FOR_RUNS(r0, r1, Ho, lo, hi, cw, ...)                                         \
  {                                                                                   \
    const int full_ = (lo) == 0 && (hi) == (Ho);                                      \
    for (int n_ = (r0) / (Ho); n_ * (Ho) < (r1); n_++) {                              \
      int s_ = full_ ? (r0) : n_ * (Ho) + (lo), e_ = full_ ? (r1) : n_ * (Ho) + (hi); \
      if (s_ < (r0)) s_ = (r0);                                                       \
      if (e_ > (r1)) e_ = (r1);                                                       \
      if (s_ < e_) {                                                                  \
        const int p0 = (s_ - (r0)) * (cw), p1 = (e_ - (r0)) * (cw);                   \
        __VA_ARGS__                                                                   \
      }                                                                               \
      if (full_) break;                                                               \
    }                                                                                 \
  }

/*
 * The register tile both kernels below share: R input channels (1..4) x 4V output channels (V = 1
 * or 2) summed in s0..s3 (first 4 output channels) and t0..t3 (next 4), for acc's rows Co floats
 * apart. TILE_STEP adds one position: xp its R input values, dp its 4V gradients.
 */
#define TILE_LOAD(R, V, acc, Co)                                                                        \
  {                                                                                                     \
    s0 = wasm_v128_load(acc);                                                                           \
    if (V > 1) t0 = wasm_v128_load((acc) + 4);                                                          \
    if (R > 1) { s1 = wasm_v128_load((acc) + (Co)); if (V > 1) t1 = wasm_v128_load((acc) + (Co) + 4); } \
    if (R > 2) { s2 = wasm_v128_load((acc) + 2 * (Co)); if (V > 1) t2 = wasm_v128_load((acc) + 2 * (Co) + 4); } \
    if (R > 3) { s3 = wasm_v128_load((acc) + 3 * (Co)); if (V > 1) t3 = wasm_v128_load((acc) + 3 * (Co) + 4); } \
  }
#define TILE_STORE(R, V, acc, Co)                                                                       \
  {                                                                                                     \
    wasm_v128_store(acc, s0);                                                                           \
    if (V > 1) wasm_v128_store((acc) + 4, t0);                                                          \
    if (R > 1) { wasm_v128_store((acc) + (Co), s1); if (V > 1) wasm_v128_store((acc) + (Co) + 4, t1); } \
    if (R > 2) { wasm_v128_store((acc) + 2 * (Co), s2); if (V > 1) wasm_v128_store((acc) + 2 * (Co) + 4, t2); } \
    if (R > 3) { wasm_v128_store((acc) + 3 * (Co), s3); if (V > 1) wasm_v128_store((acc) + 3 * (Co) + 4, t3); } \
  }
#define TILE_STEP(R, V, xp, dp)                       \
  {                                                   \
    const v128_t d0 = wasm_v128_load(dp);             \
    const v128_t d1 = V > 1 ? wasm_v128_load((dp) + 4) : d0; \
    v128_t x_ = wasm_v128_load32_splat(xp);           \
    s0 = MADD(x_, d0, s0);                            \
    if (V > 1) t0 = MADD(x_, d1, t0);                 \
    if (R > 1) {                                      \
      x_ = wasm_v128_load32_splat((xp) + 1);          \
      s1 = MADD(x_, d0, s1);                          \
      if (V > 1) t1 = MADD(x_, d1, t1);               \
    }                                                 \
    if (R > 2) {                                      \
      x_ = wasm_v128_load32_splat((xp) + 2);          \
      s2 = MADD(x_, d0, s2);                          \
      if (V > 1) t2 = MADD(x_, d1, t2);               \
    }                                                 \
    if (R > 3) {                                      \
      x_ = wasm_v128_load32_splat((xp) + 3);          \
      s3 = MADD(x_, d0, s3);                          \
      if (V > 1) t3 = MADD(x_, d1, t3);               \
    }                                                 \
  }

/*
 * One register tile: R input channels (1..4) x 4V output channels (V = 1 or 2) of one tap, acc its
 * sums in dW (rows Co floats apart); v the tap's packed x at the tile's channels ([P][4]), d the
 * packed dy ([P][4V]). `fresh`: acc holds nothing yet — the sums start from zero registers, the
 * same bits as from zeroed memory (+0 + p is p, and +0 for p = -0).
 */
INLINE void tile(const int R, const int V, float *acc, int Co, const float *v, const float *d, int r0, int r1, int Ho, int lo,
                 int hi, int cw, int fresh) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  if (!fresh) TILE_LOAD(R, V, acc, Co)
  FOR_RUNS(r0, r1, Ho, lo, hi, cw, {
    const float *vp = v + 4 * p0, *dp = d + 4 * V * p0;
    for (int p = p0; p < p1; p++, vp += 4, dp += 4 * V) TILE_STEP(R, V, vp, dp)
  })
  TILE_STORE(R, V, acc, Co)
}

/* Output channels past the last multiple of 4 of tap (a, b), one at a time, from x and dy in place. */
INLINE void tail_channels(float *acc, const float *x, const float *dy, const Geometry *g, int r0, int r1, int a, int b, int lo, int hi,
                          int c0, int c1, int co0, int fresh) {
  const int Ci = g->Ci, Co = g->Co;
  for (int ci = 0; ci < Ci; ci++) {
    for (int co = co0; co < Co; co++) {
      float sum = fresh ? 0.0f : acc[ci * Co + co];
      FOR_RUNS(r0, r1, g->Ho, lo, hi, 1, {
        for (int r = p0 + r0; r < p1 + r0; r++) {
          const int n = r / g->Ho, oh = r % g->Ho, ih = oh * g->sh - g->top + a;
          for (int ow = c0; ow < c1; ow++) {
            const int iw = ow * g->sw - g->left + b;
            sum += x[((n * g->H + ih) * g->W + iw) * Ci + ci] * dy[(r * g->Wo + ow) * Co + co];
          }
        }
      })
      acc[ci * Co + co] = sum;
    }
  }
}

/* dy's rows [r0, r1), columns [c0, c1), channels [0, Co & ~3) as [Co/8][P][8] then [P][4] at D. */
INLINE void pack_dy(float *D, const float *dy, const Geometry *g, int r0, int r1, int c0, int c1) {
  const int Co = g->Co, co8 = Co & ~7, co4 = Co & ~3, P = (r1 - r0) * (c1 - c0);
  for (int r = r0; r < r1; r++) {
    const int p = (r - r0) * (c1 - c0);
    const float *src = dy + (r * g->Wo + c0) * Co;
    for (int ow = c0; ow < c1; ow++, src += Co) {
      float *dst = D + 8 * (p + ow - c0);
      for (int co = 0; co < co8; co += 8, dst += 8 * P) {
        wasm_v128_store(dst, wasm_v128_load(src + co));
        wasm_v128_store(dst + 4, wasm_v128_load(src + co + 4));
      }
      if (co8 < co4) wasm_v128_store(D + co8 * P + 4 * (p + ow - c0), wasm_v128_load(src + co8));
    }
  }
}

/* x at tap (a, b)'s positions of the block (its runs) as [Ci/4][P][4] at X; the last 4 channels' missing lanes left as they are. */
INLINE void pack_x(float *X, const float *x, const Geometry *g, int r0, int r1, int a, int b, int lo, int hi, int c0, int c1) {
  const int Ci = g->Ci, ci4 = Ci & ~3, P = (r1 - r0) * (c1 - c0), xstep = g->sw * Ci;
  FOR_RUNS(r0, r1, g->Ho, lo, hi, 1, {
    for (int r = p0 + r0; r < p1 + r0; r++) {
      const int n = r / g->Ho, oh = r % g->Ho, ih = oh * g->sh - g->top + a;
      const float *src = x + ((n * g->H + ih) * g->W + c0 * g->sw - g->left + b) * Ci;
      float *dst = X + 4 * (r - r0) * (c1 - c0);
      for (int ow = c0; ow < c1; ow++, src += xstep, dst += 4) {
        int ci = 0;
        for (; ci < ci4; ci += 4) wasm_v128_store(dst + ci * P, wasm_v128_load(src + ci));
        for (int j = 0; ci + j < Ci; j++) dst[ci * P + j] = src[ci + j];
      }
    }
  })
}

/*
 * Every tap and channel tile over the block of flattened rows [r0, r1); X and D the packing
 * buffers (scratch). `fresh`: the block is the chunk's first (dW holds nothing yet).
 */
INLINE void block(float *dw, float *X, float *D, const float *x, const float *dy, const Geometry *g, int kh, int kw, int r0, int r1,
                  int fresh) {
  const int Ci = g->Ci, Co = g->Co, Ho = g->Ho;
  const int co8 = Co & ~7, co4 = Co & ~3;
  int packed0 = -1, packed1 = -1; /* the columns D holds */
  for (int b = 0; b < kw; b++) {
    const int c0 = first_col(g, b), c1 = end_col(g, b);
    const int cw = c1 > c0 ? c1 - c0 : 0;
    if (cw > 0 && (c0 != packed0 || c1 != packed1)) {
      pack_dy(D, dy, g, r0, r1, c0, c1);
      packed0 = c0, packed1 = c1;
    }
    const int P = (r1 - r0) * cw;
    for (int a = 0; a < kh; a++) {
      int lo = first_row(g, a), hi = end_row(g, a);
      if (hi < lo) hi = lo;
      if ((cw == 0 || lo == hi) && !fresh) continue; /* nothing to add; a fresh block still writes its zeros */
      if (cw > 0) pack_x(X, x, g, r0, r1, a, b, lo, hi, c0, c1);
      float *tap = dw + (a * kw + b) * Ci * Co;
      /* 8 channels of dy stay in L1 while the tiles run through x's channels */
      for (int co = 0; co < co4; co += 8) {
        const float *d = D + co * P;
        int ci = 0;
        if (co < co8) {
          for (; ci + 4 <= Ci; ci += 4) tile(4, 2, tap + ci * Co + co, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          const int rest = Ci - ci;
          float *t = tap + ci * Co + co;
          if (rest == 3) tile(3, 2, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          else if (rest == 2) tile(2, 2, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          else if (rest == 1) tile(1, 2, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
        } else {
          for (; ci + 4 <= Ci; ci += 4) tile(4, 1, tap + ci * Co + co, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          const int rest = Ci - ci;
          float *t = tap + ci * Co + co;
          if (rest == 3) tile(3, 1, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          else if (rest == 2) tile(2, 1, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
          else if (rest == 1) tile(1, 1, t, Co, X + ci * P, d, r0, r1, Ho, lo, hi, cw, fresh);
        }
      }
      if (co4 < Co) tail_channels(tap, x, dy, g, r0, r1, a, b, lo, hi, c0, c1, co4, fresh);
    }
  }
}

/*
 * Below 32 input channels (filterGradBlock in wasm-conv-kernels.ts) x and dy are read in place:
 * there packing cost more than it saved (a first conv's 3 channels 1.2-2.8x slower packed, 16 no
 * faster), and reading x in place costs little where a position's channels are few. One register
 * tile: R input channels (1..4) x 4V output channels (V = 1 or 2) of tap (a, b),
 * accumulated over output rows [oh0, oh1) of image n and columns [c0, c1).
 */
INLINE void tile_in_place(const int R, const int V, float *acc, const float *x, const float *dy, const Geometry *g,
                 int n, int oh0, int oh1, int a, int b, int ci0, int co0, int c0, int c1) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  const int Co = g->Co;
  TILE_LOAD(R, V, acc, Co)
  const int xstep = g->sw * g->Ci;
  for (int oh = oh0; oh < oh1; oh++) {
    const int ih = oh * g->sh - g->top + a;
    if (ih < 0 || ih >= g->H) continue;
    const float *xp = x + ((n * g->H + ih) * g->W + c0 * g->sw - g->left + b) * g->Ci + ci0;
    const float *dp = dy + ((n * g->Ho + oh) * g->Wo + c0) * Co + co0;
    for (int ow = c0; ow < c1; ow++, xp += xstep, dp += Co) TILE_STEP(R, V, xp, dp)
  }
  TILE_STORE(R, V, acc, Co)
}

/* Output channels past the last multiple of 4, one at a time. */
INLINE void tail_in_place(float *acc, const float *x, const float *dy, const Geometry *g, int n, int oh0, int oh1,
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

/* Every tap and channel tile over rows [oh0, oh1) of image n, from x and dy in place. */
INLINE void rows_in_place(float *dw, const float *x, const float *dy, const Geometry *g, int kh, int kw, int n, int oh0, int oh1) {
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
        for (; co < co8; co += 8) tile_in_place(4, 2, tap + ci * Co + co, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        if (co < co4) tile_in_place(4, 1, tap + ci * Co + co, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
      }
      const int rest = Ci - ci;
      if (rest > 0) {
        int co = 0;
        for (; co < co8; co += 8) {
          float *t = tap + ci * Co + co;
          if (rest == 3) tile_in_place(3, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else if (rest == 2) tile_in_place(2, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else tile_in_place(1, 2, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        }
        if (co < co4) {
          float *t = tap + ci * Co + co;
          if (rest == 3) tile_in_place(3, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else if (rest == 2) tile_in_place(2, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
          else tile_in_place(1, 1, t, x, dy, g, n, oh0, oh1, a, b, ci, co, c0, c1);
        }
      }
      if (co4 < Co) tail_in_place(tap, x, dy, g, n, oh0, oh1, a, b, co4, c0, c1);
    }
  }
}

/*
 * Writes to dw ([kh, kw, Ci, Co]) the sum over output rows [row0, row1) of the flattened [N * Ho]
 * row range: one chunk of the rows, whose sums the caller adds up in chunk order (so the result
 * depends on the chunks, fixed by the shape, never on the threads). The chunk is cut into even
 * blocks of at most `rows` rows (filterGradBlock in wasm-conv-kernels.ts: the packed operands stay
 * in L2); `scratch` holds rows * Wo * (Ci rounded up to 4 + Co rounded down to 4) floats. `rows` 0:
 * x and dy read in place, no scratch.
 */
EXPORT(conv2d_filter_grad)
void conv2d_filter_grad(float *dw, float *scratch, const float *x, const float *dy, int H, int W, int Ci, int Ho, int Wo, int Co, int kh,
                        int kw, int sh, int sw, int top, int left, int rows, int row0, int row1) {
  const Geometry g = {H, W, Ci, Ho, Wo, Co, sh, sw, top, left, 0, 0};
  if (rows == 0) {
    /* in place: blocks of rows within an image, ~64 KB of dy each */
    int block = 16384 / (Wo * Co > 0 ? Wo * Co : 1);
    if (block < 1) block = 1;
    zero(dw, kh * kw * Ci * Co);
    for (int r = row0; r < row1;) {
      const int n = r / Ho, oh0 = r % Ho;
      int oh1 = oh0 + block;
      if (oh1 > Ho) oh1 = Ho;
      if (oh1 - oh0 > row1 - r) oh1 = oh0 + (row1 - r);
      rows_in_place(dw, x, dy, &g, kh, kw, n, oh0, oh1);
      r += oh1 - oh0;
    }
    return;
  }
  float *X = scratch, *D = scratch + rows * Wo * ((Ci + 3) & ~3);
  const int total = row1 - row0, blocks = (total + rows - 1) / rows;
  for (int k = 0; k < blocks; k++) {
    const int r0 = row0 + (int)((long long)k * total / blocks), r1 = row0 + (int)((long long)(k + 1) * total / blocks);
    block(dw, X, D, x, dy, &g, kh, kw, r0, r1, k == 0);
  }
}
