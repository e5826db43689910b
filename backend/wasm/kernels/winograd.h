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
 * M[xi][t][co] = sum over ci of V[xi][t][ci] * U[xi][ci][co] for the X matrices, tiles [0, T) (T a
 * multiple of 4) and all Co (a multiple of 8): 4 tiles x 8 channels per register tile.
 */
INLINE void multiply(float *M, const float *V, const float *U, int X, int T, int Ci, int Co) {
  for (int xi = 0; xi < X; xi++) {
    const float *Vx = V + xi * PLANE(T, Ci);
    float *Mx = M + xi * PLANE(T, Co);
    for (int co = 0; co < Co; co += 8) {
      const float *Us = U + (xi * Co + co) * Ci; /* [Ci][8] */
      for (int t = 0; t < T; t += 4) {
        v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
        const float *v0 = Vx + t * Ci, *v1 = v0 + Ci, *v2 = v1 + Ci, *v3 = v2 + Ci;
        const float *u = Us;
        for (int ci = 0; ci < Ci; ci++, u += 8) {
          const v128_t w0 = wasm_v128_load(u), w1 = wasm_v128_load(u + 4);
          v128_t v = wasm_v128_load32_splat(v0 + ci);
          s0 = MADD(v, w0, s0);
          t0 = MADD(v, w1, t0);
          v = wasm_v128_load32_splat(v1 + ci);
          s1 = MADD(v, w0, s1);
          t1 = MADD(v, w1, t1);
          v = wasm_v128_load32_splat(v2 + ci);
          s2 = MADD(v, w0, s2);
          t2 = MADD(v, w1, t2);
          v = wasm_v128_load32_splat(v3 + ci);
          s3 = MADD(v, w0, s3);
          t3 = MADD(v, w1, t3);
        }
        store_4x8(Mx + t * Co + co, Co, s0, t0, s1, t1, s2, t2, s3, t3);
      }
    }
  }
}

/* acc[xi][ci][co] += sum over tiles t < T of V[xi][t][ci] * D[xi][t][co] for the X matrices: 4 x 8 register tiles. */
INLINE void accumulate(float *acc, const float *V, const float *D, int X, int T, int Ci, int Co) {
  for (int xi = 0; xi < X; xi++) {
    const float *Vx = V + xi * PLANE(T, Ci), *Dx = D + xi * PLANE(T, Co);
    float *Ax = acc + xi * Ci * Co;
    for (int ci = 0; ci < Ci; ci += 4)
      for (int co = 0; co < Co; co += 8) {
        float *a = Ax + ci * Co + co;
        v128_t s0 = wasm_v128_load(a), t0 = wasm_v128_load(a + 4);
        v128_t s1 = wasm_v128_load(a + Co), t1 = wasm_v128_load(a + Co + 4);
        v128_t s2 = wasm_v128_load(a + 2 * Co), t2 = wasm_v128_load(a + 2 * Co + 4);
        v128_t s3 = wasm_v128_load(a + 3 * Co), t3 = wasm_v128_load(a + 3 * Co + 4);
        const float *v = Vx + ci, *d = Dx + co;
        for (int t = 0; t < T; t++, v += Ci, d += Co) {
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
