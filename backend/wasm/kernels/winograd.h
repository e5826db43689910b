/*
 * What Winograd F(2x2, 3x3) (winograd.c) and F(4x4, 3x3) (winograd4.c) share: the layout of the
 * transformed tiles and the products over channels, which are most of the arithmetic.
 */
#ifndef ROBUST_KERNELS_WINOGRAD_H
#define ROBUST_KERNELS_WINOGRAD_H
#include "common.h"

#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul

/* A 4 x 8 register tile (rows of two vectors) to p, rows `stride` floats apart. */
INLINE void store_4x8(float *p, int stride, v128_t s0, v128_t t0, v128_t s1, v128_t t1, v128_t s2, v128_t t2, v128_t s3, v128_t t3) {
  wasm_v128_store(p, s0);
  wasm_v128_store(p + 4, t0);
  wasm_v128_store(p + stride, s1);
  wasm_v128_store(p + stride + 4, t1);
  wasm_v128_store(p + 2 * stride, s2);
  wasm_v128_store(p + 2 * stride + 4, t2);
  wasm_v128_store(p + 3 * stride, s3);
  wasm_v128_store(p + 3 * stride + 4, t3);
}

/*
 * The matrices of V (16 for F(2x2, 3x3), 36 for F(4x4, 3x3)) ([T][Ci] each) and of M ([T][Co]) lie `plane` floats apart: T * C plus a
 * cache line, since T * C * 4 bytes is often a multiple of 4 KiB, and 16 loads or stores at such a
 * stride all land in one cache set.
 */
#define PLANE(T, C) ((T) * (C) + 16)

/*
 * Within a matrix, the transforms write the layouts the products below read best (single thread,
 * CPU time, against rows [T][C] for both, alternating call by call):
 *   filter gradient, V: [Ci/4][T][4] (tile t at V + 4 * t, 4 * T floats on to the next 4
 *     channels) and D: [Co/8][T][8] (tile t's channels co..co+3 at D + 8 * t + d_at(co, T)): the
 *     transforms' v128s (4 channels of a tile) as they are, and a register tile's loop reads both
 *     contiguously. From rows, each of its steps touched two new cache lines, 16 of their 64 bytes
 *     used, and at 256 or 512 channels the rows of a 64-tile unit (1 or 2 KiB apart) fell into a
 *     few L1 sets and evicted each other: the products 1.45-1.7x faster there, 1.0-1.08x below.
 *   forward / dx, V: with Co >= SPREAD_FROM "spread", [T/4][Ci][4 tiles]: the products' loop
 *     steps one pointer 16 bytes a channel, 1.05-1.07x (plain SIMD) and 1.09-1.13x (FMA) faster
 *     than from rows; but each v128 of the transform becomes 4 one-lane stores (the transform
 *     0.75-0.85x), which costs what that gains at 64 channels and more below (the whole conv
 *     0.92-0.99x at 16 and 32). Below SPREAD_FROM, rows [T][Ci] as before. (Packed
 *     [T/4][Ci/4][4 tiles][4], whole v128 stores, read with an inner loop of 4: 0.97-1.0x.)
 *     v_forward(V, t, Ci, spread): channel 0 of tile t; v_step(spread) floats on to the next 4
 *     channels, which are 1 (rows) or 4 floats apart.
 */
#define SPREAD_FROM 128
INLINE float *v_forward(float *V, int t, int Ci, int spread) { return spread ? V + (t & ~3) * Ci + (t & 3) : V + t * Ci; }
INLINE int v_step(int spread) { return spread ? 16 : 4; }

/* Channels c..c+3 of one tile to p: contiguous, or (`spread`: the forward layout) 4 floats apart. */
INLINE void store_v(float *p, v128_t o, int spread) {
  if (spread) {
    wasm_v128_store32_lane(p, o, 0);
    wasm_v128_store32_lane(p + 4, o, 1);
    wasm_v128_store32_lane(p + 8, o, 2);
    wasm_v128_store32_lane(p + 12, o, 3);
  } else
    wasm_v128_store(p, o);
}
INLINE int d_at(int co, int T) { return (co >> 3) * 8 * T + (co & 4); }

/* Zeros to the X matrices' channels [0, C) of one tile at v, 4 channels `step` floats apart (padding tiles). */
INLINE void zero_tile(float *v, int plane, int step, int spread, int C, int X) {
  for (int xi = 0; xi < X; xi++)
    for (int c = 0; c < C; c += 4) store_v(v + xi * plane + (c >> 2) * step, wasm_f32x4_splat(0), spread);
}

/* The same for one tile of D (filter gradient layout; d = D + 8 * t). */
INLINE void zero_gradient_tile(float *d, int plane, int T, int C, int X) {
  for (int xi = 0; xi < X; xi++)
    for (int c = 0; c < C; c += 4) wasm_v128_store(d + xi * plane + d_at(c, T), wasm_f32x4_splat(0));
}

/* One channel of a register tile: the 4 tiles' values at v0..v3; U's 8 at u. */
#define STEP(v0, v1, v2, v3, u)                                       \
  {                                                                   \
    const v128_t w0 = wasm_v128_load(u), w1 = wasm_v128_load(u + 4); \
    v128_t x = wasm_v128_load32_splat(v0);                            \
    s0 = MADD(x, w0, s0);                                             \
    t0 = MADD(x, w1, t0);                                             \
    x = wasm_v128_load32_splat(v1);                                   \
    s1 = MADD(x, w0, s1);                                             \
    t1 = MADD(x, w1, t1);                                             \
    x = wasm_v128_load32_splat(v2);                                   \
    s2 = MADD(x, w0, s2);                                             \
    t2 = MADD(x, w1, t2);                                             \
    x = wasm_v128_load32_splat(v3);                                   \
    s3 = MADD(x, w0, s3);                                             \
    t3 = MADD(x, w1, t3);                                             \
  }

/*
 * M[xi][t][co] = sum over ci of V[xi][t][ci] * U[xi][ci][co] for the X matrices, tiles [0, T) (T a
 * multiple of 4) and all Co (a multiple of 8): 4 tiles x 8 channels per register tile, the sums in
 * ci order from 0. V in the forward layout (above), `spread` (a constant) or rows.
 */
INLINE void multiply_layout(float *M, const float *V, const float *U, int X, int T, int Ci, int Co, int spread) {
  for (int xi = 0; xi < X; xi++) {
    const float *Vx = V + xi * PLANE(T, Ci);
    float *Mx = M + xi * PLANE(T, Co);
    for (int co = 0; co < Co; co += 8) {
      const float *Us = U + (xi * Co + co) * Ci; /* [Ci][8] */
      for (int t = 0; t < T; t += 4) {
        v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
        const float *u = Us;
        if (spread) { /* [Ci][4 tiles]: one pointer */
          const float *v = Vx + t * Ci;
          for (int ci = 0; ci < Ci; ci++, v += 4, u += 8) STEP(v, v + 1, v + 2, v + 3, u)
        } else {
          const float *v0 = Vx + t * Ci, *v1 = v0 + Ci, *v2 = v1 + Ci, *v3 = v2 + Ci;
          for (int ci = 0; ci < Ci; ci++, u += 8) STEP(v0 + ci, v1 + ci, v2 + ci, v3 + ci, u)
        }
        store_4x8(Mx + t * Co + co, Co, s0, t0, s1, t1, s2, t2, s3, t3);
      }
    }
  }
}
#undef STEP

/*
 * Each layout's products in a function of its own, not inlined: inside the conv kernel, beside the
 * other layout's loop, V8 compiled either loop 3-5% slower (plain SIMD).
 */
static __attribute__((noinline)) void multiply_spread(float *M, const float *V, const float *U, int X, int T, int Ci, int Co) {
  multiply_layout(M, V, U, X, T, Ci, Co, 1);
}
static __attribute__((noinline)) void multiply_rows(float *M, const float *V, const float *U, int X, int T, int Ci, int Co) {
  multiply_layout(M, V, U, X, T, Ci, Co, 0);
}

INLINE void multiply(float *M, const float *V, const float *U, int X, int T, int Ci, int Co, int spread) {
  if (spread)
    multiply_spread(M, V, U, X, T, Ci, Co);
  else
    multiply_rows(M, V, U, X, T, Ci, Co);
}

/*
 * acc[xi][ci][co] += sum over tiles t < T of V[xi][t][ci] * D[xi][t][co] for the X matrices, the
 * sums in t order: 4 x 8 register tiles. V and D in the filter gradient's layouts (above), so a
 * register tile reads 16 bytes of V and 32 of D per tile, both contiguous. `fresh`: acc holds
 * nothing yet — the sums start from zero registers, the same bits as from zeroed memory (+0 + p is
 * p, and +0 for p = -0, either way), without a pass that zeroes 36 * Ci * Co floats first.
 */
INLINE void accumulate(float *acc, const float *V, const float *D, int X, int T, int Ci, int Co, int fresh) {
  for (int xi = 0; xi < X; xi++) {
    const float *Vx = V + xi * PLANE(T, Ci), *Dx = D + xi * PLANE(T, Co);
    float *Ax = acc + xi * Ci * Co;
    for (int ci = 0; ci < Ci; ci += 4)
      for (int co = 0; co < Co; co += 8) {
        float *a = Ax + ci * Co + co;
        v128_t s0 = wasm_f32x4_splat(0), t0 = s0, s1 = s0, t1 = s0, s2 = s0, t2 = s0, s3 = s0, t3 = s0;
        if (!fresh) {
          s0 = wasm_v128_load(a), t0 = wasm_v128_load(a + 4);
          s1 = wasm_v128_load(a + Co), t1 = wasm_v128_load(a + Co + 4);
          s2 = wasm_v128_load(a + 2 * Co), t2 = wasm_v128_load(a + 2 * Co + 4);
          s3 = wasm_v128_load(a + 3 * Co), t3 = wasm_v128_load(a + 3 * Co + 4);
        }
        const float *v = Vx + ci * T, *d = Dx + co * T; /* [T][4], [T][8] */
        for (int t = 0; t < T; t++, v += 4, d += 8) {
          const v128_t d0 = wasm_v128_load(d), d1 = wasm_v128_load(d + 4);
          v128_t x = wasm_v128_load32_splat(v);
          s0 = MADD(x, d0, s0);
          t0 = MADD(x, d1, t0);
          x = wasm_v128_load32_splat(v + 1);
          s1 = MADD(x, d0, s1);
          t1 = MADD(x, d1, t1);
          x = wasm_v128_load32_splat(v + 2);
          s2 = MADD(x, d0, s2);
          t2 = MADD(x, d1, t2);
          x = wasm_v128_load32_splat(v + 3);
          s3 = MADD(x, d0, s3);
          t3 = MADD(x, d1, t3);
        }
        store_4x8(a, Co, s0, t0, s1, t1, s2, t2, s3, t3);
      }
  }
}

#endif
