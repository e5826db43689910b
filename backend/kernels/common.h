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

void zero(float *dst, int count);

#endif
