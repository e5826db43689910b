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

/* dst += src over `count` floats (summing the per-thread partial gradients). */
EXPORT(add_into)
void add_into(float *dst, const float *src, int count) {
  int i = 0;
  for (; i + 4 <= count; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < count; i++) dst[i] += src[i];
}

