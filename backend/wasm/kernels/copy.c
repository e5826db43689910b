/* Copies that tfjs's wasm backend does in JS. */
#include "common.h"

/*
 * A slice of a 4-byte tensor as rows of `len` contiguous values: row r of the output, r = ((i0*d1 +
 * i1)*d2 + i2)*d3 + i3, comes from src + i0*s0 + i1*s1 + i2*s2 + i3*s3 (src already at the slice's
 * first value). tfjs's wasm Slice (and SplitV, the gradient of every ConcatV2) copies row by row
 * from JS. Rows [r0, r1).
 */
EXPORT(slice_rows)
void slice_rows(float *out, const float *src, int d1, int d2, int d3, int s0, int s1, int s2, int s3, int len, int r0, int r1) {
  for (int r = r0; r < r1; r++) {
    const int i3 = r % d3, q = r / d3, i2 = q % d2, q2 = q / d2, i1 = q2 % d1, i0 = q2 / d1;
    const float *from = src + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3;
    float *to = out + r * len;
    int i = 0;
    for (; i + 4 <= len; i += 4) wasm_v128_store(to + i, wasm_v128_load(from + i));
    for (; i < len; i++) to[i] = from[i];
  }
}
