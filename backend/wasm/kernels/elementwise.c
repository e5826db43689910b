/* Elementwise kernels that save passes over an activation. */
#include "common.h"

/* Floats per row of work: rows are how the pool splits a job across threads. */
#define ROW 4096

/*
 * ReLU: y = max(x, 0) with the values of tfjs's other kernels (JS Math.max(0, x)): NaN stays NaN
 * and -0 becomes +0, which is what wasm's f32x4.max does. Rows [r0, r1) of ROW floats.
 */
EXPORT(relu)
void relu(float *y, const float *x, int count, int r0, int r1) {
  const v128_t zero = wasm_f32x4_splat(0);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 16 <= end; i += 16) {
    wasm_v128_store(y + i, wasm_f32x4_max(wasm_v128_load(x + i), zero));
    wasm_v128_store(y + i + 4, wasm_f32x4_max(wasm_v128_load(x + i + 4), zero));
    wasm_v128_store(y + i + 8, wasm_f32x4_max(wasm_v128_load(x + i + 8), zero));
    wasm_v128_store(y + i + 12, wasm_f32x4_max(wasm_v128_load(x + i + 12), zero));
  }
  for (; i < end; i++) y[i] = x[i] > 0 || x[i] != x[i] ? x[i] : 0.0f;
}

/*
 * The ReLU gradient in one pass: dx = dy * step(x), step(x) = 1 for x > 0, NaN for NaN, else 0 —
 * tfjs's Multiply(dy, Step(x)), NaN for NaN, without the intermediate. Rows [r0, r1) of ROW floats.
 */
EXPORT(relu_grad)
void relu_grad(float *dx, const float *dy, const float *x, int count, int r0, int r1) {
  const v128_t zero = wasm_f32x4_splat(0), one = wasm_f32x4_splat(1);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t step = wasm_v128_or(wasm_v128_and(wasm_f32x4_gt(v, zero), one), wasm_v128_and(v, wasm_f32x4_ne(v, v)));
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), step));
  }
  for (; i < end; i++) dx[i] = dy[i] * (x[i] > 0 ? 1.0f : x[i] != x[i] ? x[i] : 0.0f);
}

/*
 * sign(x): 1 for x > 0, -1 for x < 0, else 0 (zeros and NaN) — the cpu backend's values. tfjs's wasm
 * Sign returns 0 for |x| < FLT_EPSILON, so a gradient-sign step skipped every pixel of a confident
 * example, whose input gradient is ~1e-10. Rows [r0, r1) of ROW floats.
 */
EXPORT(sign)
void sign(float *y, const float *x, int count, int r0, int r1) {
  const v128_t zero = wasm_f32x4_splat(0), one = wasm_f32x4_splat(1), minus_one = wasm_f32x4_splat(-1);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(y + i, wasm_v128_or(wasm_v128_and(wasm_f32x4_gt(v, zero), one), wasm_v128_and(wasm_f32x4_lt(v, zero), minus_one)));
  }
  for (; i < end; i++) y[i] = x[i] > 0 ? 1.0f : x[i] < 0 ? -1.0f : 0.0f;
}

/*
 * ReLU6: y = min(max(x, 0), 6) with the cpu backend's values (NaN stays NaN, -0 becomes +0).
 * tfjs's wasm Relu6 is a scalar loop on one thread. Rows [r0, r1) of ROW floats.
 */
EXPORT(relu6)
void relu6(float *y, const float *x, int count, int r0, int r1) {
  const v128_t zero = wasm_f32x4_splat(0), six = wasm_f32x4_splat(6);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) wasm_v128_store(y + i, wasm_f32x4_min(wasm_f32x4_max(wasm_v128_load(x + i), zero), six));
  for (; i < end; i++) y[i] = x[i] != x[i] ? x[i] : x[i] > 6 ? 6.0f : x[i] > 0 ? x[i] : 0.0f;
}

/*
 * The ReLU6 gradient in one pass: dx = dy * m, m = 1 for 0 < x <= 6, NaN for NaN, else 0 — tfjs's
 * Multiply(dy, Cast(Multiply(LessEqual(x, 6), Step(x)))), five kernels, without the intermediates.
 */
EXPORT(relu6_grad)
void relu6_grad(float *dx, const float *dy, const float *x, int count, int r0, int r1) {
  const v128_t zero = wasm_f32x4_splat(0), one = wasm_f32x4_splat(1), six = wasm_f32x4_splat(6);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t inside = wasm_v128_and(wasm_f32x4_gt(v, zero), wasm_f32x4_le(v, six));
    const v128_t m = wasm_v128_or(wasm_v128_and(inside, one), wasm_v128_and(v, wasm_f32x4_ne(v, v)));
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), m));
  }
  for (; i < end; i++) dx[i] = dy[i] * (x[i] != x[i] ? x[i] : x[i] > 0 && x[i] <= 6 ? 1.0f : 0.0f);
}

/*
 * The sigmoid gradient from its output in one pass: dx = dy * (y * (1 - y)), the operations of
 * tfjs's formula (three kernels) in its order. Rows [r0, r1) of ROW floats.
 */
EXPORT(sigmoid_grad)
void sigmoid_grad(float *dx, const float *dy, const float *y, int count, int r0, int r1) {
  const v128_t one = wasm_f32x4_splat(1);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) {
    const v128_t v = wasm_v128_load(y + i);
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), wasm_f32x4_mul(v, wasm_f32x4_sub(one, v))));
  }
  for (; i < end; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
}

/*
 * One SGD step with momentum and L2 weight decay for one variable, in place of train/sgd.ts's
 * tfjs ops and with their values (each operation rounded, multiply and add never fused):
 * g' = g + w * wd where `decay` (else g' = g, as the ops skip the term: -0 and infinities stay
 * theirs), v' = v * momentum + g', w' = w - v' * lr. Writes w' and v'; rows [r0, r1) of ROW floats.
 */
EXPORT(sgd_momentum)
void sgd_momentum(float *w_out, float *v_out, const float *w, const float *g, const float *v, int lr_bits, int momentum_bits,
                  int wd_bits, int decay, int count, int r0, int r1) {
  /* Kernel arguments are i32s (the thread pool's job words): the float32s come as their bits. */
  const float lr = __builtin_bit_cast(float, lr_bits), momentum = __builtin_bit_cast(float, momentum_bits);
  const float wd = __builtin_bit_cast(float, wd_bits);
  const v128_t vlr = wasm_f32x4_splat(lr), vmom = wasm_f32x4_splat(momentum), vwd = wasm_f32x4_splat(wd);
  const int end = r1 * ROW < count ? r1 * ROW : count;
  int i = r0 * ROW;
  for (; i + 4 <= end; i += 4) {
    const v128_t wi = wasm_v128_load(w + i);
    v128_t gi = wasm_v128_load(g + i);
    if (decay) gi = wasm_f32x4_add(gi, wasm_f32x4_mul(wi, vwd));
    const v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vmom), gi);
    wasm_v128_store(v_out + i, vi);
    wasm_v128_store(w_out + i, wasm_f32x4_sub(wi, wasm_f32x4_mul(vi, vlr)));
  }
  for (; i < end; i++) {
    const float gi = decay ? g[i] + w[i] * wd : g[i];
    const float vi = v[i] * momentum + gi;
    v_out[i] = vi;
    w_out[i] = w[i] - vi * lr;
  }
}

/* a op b for the broadcasting binary kernel: 0 add, 1 sub, 2 mul, 3 div. */
INLINE v128_t vop(int op, v128_t a, v128_t b) {
  switch (op) {
    case 0: return wasm_f32x4_add(a, b);
    case 1: return wasm_f32x4_sub(a, b);
    case 2: return wasm_f32x4_mul(a, b);
    default: return wasm_f32x4_div(a, b);
  }
}
INLINE float sop(int op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
  }
}

INLINE void channel_rows(const int op, const int swap, float *out, const float *full, const float *small, int mid, int C, int per_outer, int r0, int r1) {
  for (int r = r0; r < r1; r++) {
    const float *f = full + r * C, *s = small + (per_outer ? (r / mid) * C : 0);
    float *o = out + r * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      const v128_t x = wasm_v128_load(f + c), y = wasm_v128_load(s + c);
      wasm_v128_store(o + c, swap ? vop(op, y, x) : vop(op, x, y));
    }
    for (; c < C; c++) o[c] = swap ? sop(op, s[c], f[c]) : sop(op, f[c], s[c]);
  }
}

/*
 * A binary op whose second operand broadcasts over the middle axes: out[o][m][c] = full[o][m][c] op
 * small[o or 0][c] (`swap`: small op full) — a per-channel bias, mean or scale ([C]), or a
 * per-image, per-channel one ([N, 1, 1, C]: squeeze-excite). tfjs's wasm kernels take a generic
 * broadcasting loop there, ten times slower than the same-shape op. Rows [r0, r1) of C floats.
 */
EXPORT(channel_binary)
void channel_binary(float *out, const float *full, const float *small, int op, int swap, int mid, int C, int per_outer, int r0, int r1) {
  /* One instance per op and order, so the inner loop has no switch. */
  switch (op * 2 + (swap ? 1 : 0)) {
    case 0: channel_rows(0, 0, out, full, small, mid, C, per_outer, r0, r1); break;
    case 1: channel_rows(0, 1, out, full, small, mid, C, per_outer, r0, r1); break;
    case 2: channel_rows(1, 0, out, full, small, mid, C, per_outer, r0, r1); break;
    case 3: channel_rows(1, 1, out, full, small, mid, C, per_outer, r0, r1); break;
    case 4: channel_rows(2, 0, out, full, small, mid, C, per_outer, r0, r1); break;
    case 5: channel_rows(2, 1, out, full, small, mid, C, per_outer, r0, r1); break;
    case 6: channel_rows(3, 0, out, full, small, mid, C, per_outer, r0, r1); break;
    default: channel_rows(3, 1, out, full, small, mid, C, per_outer, r0, r1); break;
  }
}
