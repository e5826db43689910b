/*
 * Phases of Winograd F(4x4, 3x3) (backend/wasm/kernels/winograd4.c) one at a time, for
 * scripts/bench-winograd-phases.ts: the same loops as winograd4_conv and winograd4_filter_grad, each
 * phase switched on by a bit of `phases` (1 input transform, 2 products, 4 output transform; for dW
 * 1 input, 2 dy, 4 products); and the machine's 128-bit multiply-add peak, as a multiply and an add
 * (peak) and as the kernels' MADD (peak_madd: one f32x4.relaxed_madd in the relaxed-SIMD build).
 */
#include "winograd4.c"

EXPORT(ph_conv)
void ph_conv(int phases, float *scratch, float *y, const float *x, const float *U, const float *bias, int N,
             int H, int W, int Ci, int Ho, int Wo, int Co, int top, int left, int R, int r0, int r1) {
  const int tilesW = (Wo + 3) / 4, tilesH = (Ho + 3) / 4, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *M = V + 36 * PLANE(T, Ci), *block = M + 36 * PLANE(T, Co);
  const int spread = Co >= SPREAD_FROM;
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first;
    if ((phases & 1) && spread) input_unit6(V, T, 1, block, x, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    if ((phases & 1) && !spread) input_unit6(V, T, 0, block, x, first, rows, tilesW, tilesH, H, W, Ci, top, left);
    if (phases & 2) multiply(M, V, U, 36, T, Ci, Co, spread);
    if (phases & 4)
      for (int k = 0; k < rows; k++) {
        const int n = (first + k) / tilesH, th = first + k - n * tilesH;
        for (int tw = 0; tw < tilesW; tw++) output_tile6(y, M, bias, T, k * tilesW + tw, Ho, Wo, Co, n, 4 * th, 4 * tw);
      }
  }
}

EXPORT(ph_fgrad)
void ph_fgrad(int phases, float *acc, float *scratch, const float *x, const float *dy, int N, int H, int W, int Ci, int Ho, int Wo,
              int Co, int top, int left, int R, int r0, int r1) {
  const int tilesW = (Wo + 3) / 4, tilesH = (Ho + 3) / 4, tileRows = N * tilesH;
  const int T = (R * tilesW + 3) & ~3;
  float *V = scratch, *D = V + 36 * PLANE(T, Ci), *block = D + 36 * PLANE(T, Co);
  if (r0 >= r1) zero(acc, 36 * Ci * Co);
  for (int r = r0; r < r1; r++) {
    const int first = r * R, rows = first + R <= tileRows ? R : tileRows - first;
    for (int k = 0; k < rows; k++) {
      const int n = (first + k) / tilesH, th = first + k - n * tilesH;
      for (int tw = 0; tw < tilesW; tw++) {
        const int t = k * tilesW + tw;
        if (phases & 1) input_tile6(V + 4 * t, PLANE(T, Ci), 4 * T, 0, block, x, H, W, Ci, n, 4 * th - top, 4 * tw - left);
        if (phases & 2) gradient_tile4(D, T, t, block, dy, Ho, Wo, Co, n, 4 * th, 4 * tw);
      }
    }
    if ((phases & 4) && r == r0) accumulate(acc, V, D, 36, T, Ci, Co, 1);
    if ((phases & 4) && r != r0) accumulate(acc, V, D, 36, T, Ci, Co, 0);
  }
}

/* Peak (16 multiply-adds per iteration, two steps of): 8 independent chains, multiplicands loaded
   from a 1 KiB buffer (L1) as a GEMM micro-kernel does (4 loads + 8 multiply-adds a step; loads are
   not the limit). OP(a, b, c) = c + a * b. */
#define MUL_ADD(a, b, c) ADD(c, MUL(a, b))
#define PEAK(name, OP)                                                                                                             \
  EXPORT(name)                                                                                                                     \
  float name(const float *buf, int iters) {                                                                                        \
    v128_t b0 = wasm_v128_load(buf), b1 = wasm_v128_load(buf + 4);                                                                 \
    v128_t s0 = b0, s1 = b1, s2 = b0, s3 = b1, s4 = b0, s5 = b1, s6 = b0, s7 = b1;                                                 \
    for (int i = 0; i < iters; i++) {                                                                                              \
      const float *p = buf + ((i & 15) << 4);                                                                                      \
      const v128_t a0 = wasm_v128_load(p), a1 = wasm_v128_load(p + 4), a2 = wasm_v128_load(p + 8), a3 = wasm_v128_load(p + 12);    \
      s0 = OP(a0, b0, s0); s1 = OP(a0, b1, s1); s2 = OP(a1, b0, s2); s3 = OP(a1, b1, s3);                                          \
      s4 = OP(a2, b0, s4); s5 = OP(a2, b1, s5); s6 = OP(a3, b0, s6); s7 = OP(a3, b1, s7);                                          \
      const v128_t c0 = wasm_v128_load(p + 256), c1 = wasm_v128_load(p + 260), c2 = wasm_v128_load(p + 264),                      \
                   c3 = wasm_v128_load(p + 268);                                                                                   \
      s0 = OP(c0, b0, s0); s1 = OP(c0, b1, s1); s2 = OP(c1, b0, s2); s3 = OP(c1, b1, s3);                                          \
      s4 = OP(c2, b0, s4); s5 = OP(c2, b1, s5); s6 = OP(c3, b0, s6); s7 = OP(c3, b1, s7);                                          \
    }                                                                                                                              \
    v128_t s = ADD(ADD(ADD(s0, s1), ADD(s2, s3)), ADD(ADD(s4, s5), ADD(s6, s7)));                                                  \
    return wasm_f32x4_extract_lane(s, 0);                                                                                          \
  }
PEAK(peak, MUL_ADD)
PEAK(peak_madd, MADD)

/* One dependent f32x4.add chain (3-cycle latency on Zen 3): its rate gives the clock. */
EXPORT(chain)
float chain(const float *buf, int iters) {
  v128_t s = wasm_v128_load(buf), a = wasm_v128_load(buf + 4);
  for (int i = 0; i < iters; i++) {
    s = ADD(s, a); s = ADD(s, a); s = ADD(s, a); s = ADD(s, a);
    s = ADD(s, a); s = ADD(s, a); s = ADD(s, a); s = ADD(s, a);
  }
  return wasm_f32x4_extract_lane(s, 0);
}
