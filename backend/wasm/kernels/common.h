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

/*
 * c + a * b, lane by lane. The relaxed-SIMD build (scripts/build-kernels.sh, -DROBUST_RELAXED_SIMD)
 * makes it one f32x4.relaxed_madd, which engines with FMA run fused (one rounding) and in one
 * instruction; the plain build keeps the multiply and the add, bit for bit the kernels before it.
 */
#ifdef ROBUST_RELAXED_SIMD
#define MADD(a, b, c) __builtin_wasm_relaxed_madd_f32x4(a, b, c)
#else
#define MADD(a, b, c) wasm_f32x4_add(c, wasm_f32x4_mul(a, b))
#endif

/*
 * A 2-D convolution, NHWC: input H x W x Ci, output Ho x Wo x Co, strides, top/left padding; a
 * buffer of zeros (at least max(Ci, Co) floats) that border tiles read in place of the padding;
 * the forward conv's bias (Co floats; the zeros where there is none).
 */
typedef struct {
  int H, W, Ci, Ho, Wo, Co, sh, sw, top, left;
  const float *zeros;
  const float *bias;
} Geometry;

/* Stores the first L lanes (1-4) of v at p. */
INLINE void store_lanes(float *p, v128_t v, int L) {
  switch (L) {
    case 4: wasm_v128_store(p, v); break;
    case 3: wasm_v128_store64_lane(p, v, 0); wasm_v128_store32_lane(p + 2, v, 2); break;
    case 2: wasm_v128_store64_lane(p, v, 0); break;
    default: wasm_v128_store32_lane(p, v, 0); break;
  }
}

void zero(float *dst, int count);

/*
 * A conv's epilogue over `count` output floats just written (still in cache): y += res (when res
 * is not null), then y = max(y, 0) (when relu) — the values of a separate Add and Relu, NaN and
 * -0 included, without their passes over the activation.
 */
void epilogue(float *y, const float *res, int count, int relu);

#endif
