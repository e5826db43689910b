/*
 * The two passes of training-mode BatchNorm (backend/batchnorm-train.ts) over channels-last data
 * [rows][C], in wasm SIMD, each over a range of rows so threads can split them:
 *  - channel_sums: per channel  s1 = sum(u - us),  s2 = sum((u - us) * (w - ws))   (statistics; dbeta, dgamma)
 *  - channel_affine: out = a*u + b*v + k per channel                               (normalise; dx)
 * Sums run in float32 within blocks of BLOCK rows and in float64 across blocks, as the JS loops
 * they replace do; a block of rows stays in cache while each group of 8 channels passes over it.
 * A call sums one chunk of rows; the caller adds the chunks' sums in chunk order.
 */
#include "common.h"

#define BLOCK 256

/* Adds the 4 lanes of v to d[0..3] in float64. */
INLINE void add_lanes(double *d, v128_t v) {
  d[0] += wasm_f32x4_extract_lane(v, 0);
  d[1] += wasm_f32x4_extract_lane(v, 1);
  d[2] += wasm_f32x4_extract_lane(v, 2);
  d[3] += wasm_f32x4_extract_lane(v, 3);
}

/* sums: [2][C] float64 (s1 then s2), set to the sums over rows [row0, row1). */
EXPORT(channel_sums)
void channel_sums(double *sums, const float *u, const float *us, const float *w, const float *ws, int C, int row0, int row1) {
  double *s1 = sums, *s2 = sums + C;
  zero((float *)sums, 4 * C);
  const int c8 = C & ~7, c4 = C & ~3;
  for (int r0 = row0; r0 < row1; r0 += BLOCK) {
    const int r1 = r0 + BLOCK < row1 ? r0 + BLOCK : row1;
    int c = 0;
    for (; c < c8; c += 8) {
      const v128_t p0 = wasm_v128_load(us + c), p1 = wasm_v128_load(us + c + 4);
      const v128_t q0 = wasm_v128_load(ws + c), q1 = wasm_v128_load(ws + c + 4);
      v128_t a0 = wasm_f32x4_splat(0), a1 = a0, b0 = a0, b1 = a0;
      for (int r = r0; r < r1; r++) {
        const float *up = u + r * C + c, *wp = w + r * C + c;
        const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(up), p0), d1 = wasm_f32x4_sub(wasm_v128_load(up + 4), p1);
        a0 = wasm_f32x4_add(a0, d0);
        a1 = wasm_f32x4_add(a1, d1);
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(d0, wasm_f32x4_sub(wasm_v128_load(wp), q0)));
        b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(d1, wasm_f32x4_sub(wasm_v128_load(wp + 4), q1)));
      }
      add_lanes(s1 + c, a0);
      add_lanes(s1 + c + 4, a1);
      add_lanes(s2 + c, b0);
      add_lanes(s2 + c + 4, b1);
    }
    for (; c < c4; c += 4) {
      const v128_t p0 = wasm_v128_load(us + c), q0 = wasm_v128_load(ws + c);
      v128_t a0 = wasm_f32x4_splat(0), b0 = a0;
      for (int r = r0; r < r1; r++) {
        const v128_t d0 = wasm_f32x4_sub(wasm_v128_load(u + r * C + c), p0);
        a0 = wasm_f32x4_add(a0, d0);
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(d0, wasm_f32x4_sub(wasm_v128_load(w + r * C + c), q0)));
      }
      add_lanes(s1 + c, a0);
      add_lanes(s2 + c, b0);
    }
    for (; c < C; c++) {
      float a = 0, b = 0;
      for (int r = r0; r < r1; r++) {
        const float d = u[r * C + c] - us[c];
        a += d;
        b += d * (w[r * C + c] - ws[c]);
      }
      s1[c] += a;
      s2[c] += b;
    }
  }
}

/* out = a*u + b*v + k per channel over rows [row0, row1); without v (has_v = 0), out = a*u + k. */
EXPORT(channel_affine)
void channel_affine(float *out, const float *u, const float *v, const float *a, const float *b, const float *k, int has_v, int C,
                    int row0, int row1) {
  const int c4 = C & ~3;
  for (int r = row0; r < row1; r++) {
    const float *up = u + r * C, *vp = v + r * C;
    float *op = out + r * C;
    int c = 0;
    if (has_v) {
      for (; c < c4; c += 4) {
        const v128_t y = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + c), wasm_v128_load(up + c)),
                                        wasm_f32x4_mul(wasm_v128_load(b + c), wasm_v128_load(vp + c)));
        wasm_v128_store(op + c, wasm_f32x4_add(y, wasm_v128_load(k + c)));
      }
      for (; c < C; c++) op[c] = a[c] * up[c] + b[c] * vp[c] + k[c];
    } else {
      for (; c < c4; c += 4)
        wasm_v128_store(op + c, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + c), wasm_v128_load(up + c)), wasm_v128_load(k + c)));
      for (; c < C; c++) op[c] = a[c] * up[c] + k[c];
    }
  }
}
