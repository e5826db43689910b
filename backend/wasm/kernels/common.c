/* Small helpers the JS side calls between kernels. */
#include "common.h"

/* dst[0..count) = 0. */
EXPORT(zero)
void zero(float *dst, int count) {
  int i = 0;
  const v128_t z = wasm_f32x4_splat(0);
  for (; i + 4 <= count; i += 4) wasm_v128_store(dst + i, z);
  for (; i < count; i++) dst[i] = 0;
}

void epilogue(float *y, const float *res, int count, int relu) {
  if (!res && !relu) return;
  const v128_t z = wasm_f32x4_splat(0);
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    v128_t v = wasm_v128_load(y + i);
    if (res) v = wasm_f32x4_add(v, wasm_v128_load(res + i));
    /* f32x4.max keeps NaN and gives +0 for -0, as the relu kernel */
    if (relu) v = wasm_f32x4_max(v, z);
    wasm_v128_store(y + i, v);
  }
  for (; i < count; i++) {
    float v = y[i];
    if (res) v += res[i];
    if (relu) v = v > 0 || v != v ? v : 0.0f;
    y[i] = v;
  }
}

/* dst += src over `count` floats (summing the per-thread partial gradients). */
EXPORT(add_into)
void add_into(float *dst, const float *src, int count) {
  int i = 0;
  for (; i + 4 <= count; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < count; i++) dst[i] += src[i];
}


/*
 * out[i] (+)= slots[0][i] + slots[1][i] + ... + slots[count-1][i], added in that order, for i in
 * floats [r0, r1) * SUM_BLOCK of `size`; slot k at slots + k * stride floats. `init`: out is
 * overwritten (the first slots of a sum), else added to. The fixed order keeps a sum over chunks
 * the same however the threads took the chunks.
 */
#define SUM_BLOCK 1024
EXPORT(sum_chunks)
void sum_chunks(float *out, const float *slots, int stride, int count, int size, int init, int r0, int r1) {
  const int i0 = r0 * SUM_BLOCK, i1 = r1 * SUM_BLOCK < size ? r1 * SUM_BLOCK : size;
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    v128_t s = init ? wasm_v128_load(slots + i) : wasm_f32x4_add(wasm_v128_load(out + i), wasm_v128_load(slots + i));
    for (int k = 1; k < count; k++) s = wasm_f32x4_add(s, wasm_v128_load(slots + k * stride + i));
    wasm_v128_store(out + i, s);
  }
  for (; i < i1; i++) {
    float s = init ? slots[i] : out[i] + slots[i];
    for (int k = 1; k < count; k++) s += slots[k * stride + i];
    out[i] = s;
  }
}
