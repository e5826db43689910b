/*
 * Shared by the kernels in this folder (built into one module by scripts/build-kernels.sh).
 *
 * The module owns no memory: it imports tfjs's wasm heap, reads and writes only the pointers it is
 * given, and must use no stack — the build checks the binary for both.
 */
#ifndef ROBUST_KERNELS_COMMON_H
#define ROBUST_KERNELS_COMMON_H
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

/* A 2-D convolution, NHWC: input H x W x Ci, output Ho x Wo x Co, strides, top/left padding. */
typedef struct {
  int H, W, Ci, Ho, Wo, Co, sh, sw, top, left;
} Geometry;

/* Stores the first L lanes (1-4) of v at p. */
INLINE void store_lanes(float *p, v128_t v, int L) {
  if (L == 4) {
    wasm_v128_store(p, v);
    return;
  }
  if (L >= 2) wasm_v128_store64_lane(p, v, 0);
  else wasm_v128_store32_lane(p, v, 0);
  if (L == 3) wasm_v128_store32_lane(p + 2, v, 2);
}

void zero(float *dst, int count);

#endif
