/*
 * Gradients of 2-D max and average pooling (NHWC), in wasm SIMD. tfjs's wasm kernels are scalar
 * loops on one thread that revisit every window for every input position: MaxPoolGrad was the
 * largest kernel of a ResNet graph model's input gradient.
 *
 * Both scatter: each output window adds its dy into the input positions it came from, 4 channels
 * per vector. Windows of one image overlap, so threads take whole images (rows = images).
 */
#include "common.h"

typedef struct {
  int H, W, C, Ho, Wo, kh, kw, sh, sw, top, left;
} Pool;

/* Rows [a0, a1) of a window at output row oh that lie inside the image (the same for columns). */
INLINE int first_tap(int o, int s, int pad) { return o * s - pad < 0 ? pad - o * s : 0; }
INLINE int end_tap(int o, int s, int pad, int k, int size) { return o * s - pad + k > size ? size - (o * s - pad) : k; }

/* Adds lane l of g into dx at position p (-1: none) of the image, channel c + l. */
#define SCATTER_LANE(l)                                         \
  do {                                                          \
    const int p = wasm_i32x4_extract_lane(idx, l);              \
    if (p >= 0) img[p * C + c + l] += wasm_f32x4_extract_lane(g, l); \
  } while (0)

/*
 * Max pooling: the window's first largest value (row by row, as the cpu backend scans it; NaN never
 * wins, a window of NaN or -inf passes nothing) gets the window's dy. Images [n0, n1).
 */
EXPORT(max_pool_grad)
void max_pool_grad(float *dx, const float *x, const float *dy, int H, int W, int C, int Ho, int Wo, int kh, int kw, int sh, int sw, int top,
                   int left, int n0, int n1) {
  for (int n = n0; n < n1; n++) {
    float *img = dx + n * H * W * C;
    const float *ximg = x + n * H * W * C;
    zero(img, H * W * C);
    for (int oh = 0; oh < Ho; oh++) {
      const int a0 = first_tap(oh, sh, top), a1 = end_tap(oh, sh, top, kh, H);
      for (int ow = 0; ow < Wo; ow++) {
        const int b0 = first_tap(ow, sw, left), b1 = end_tap(ow, sw, left, kw, W);
        const float *gp = dy + ((n * Ho + oh) * Wo + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          v128_t best = wasm_f32x4_splat(-__builtin_inff()), idx = wasm_i32x4_splat(-1);
          for (int a = a0; a < a1; a++) {
            const int ih = oh * sh - top + a;
            for (int b = b0; b < b1; b++) {
              const int p = ih * W + ow * sw - left + b;
              const v128_t v = wasm_v128_load(ximg + p * C + c);
              const v128_t m = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, m);
              idx = wasm_v128_bitselect(wasm_i32x4_splat(p), idx, m);
            }
          }
          const v128_t g = wasm_v128_load(gp + c);
          SCATTER_LANE(0);
          SCATTER_LANE(1);
          SCATTER_LANE(2);
          SCATTER_LANE(3);
        }
        for (; c < C; c++) {
          float best = -__builtin_inff();
          int at = -1;
          for (int a = a0; a < a1; a++)
            for (int b = b0; b < b1; b++) {
              const int p = (oh * sh - top + a) * W + ow * sw - left + b;
              if (ximg[p * C + c] > best) {
                best = ximg[p * C + c];
                at = p;
              }
            }
          if (at >= 0) img[at * C + c] += gp[c];
        }
      }
    }
  }
}

/*
 * Average pooling: each window's dy divided by the number of its positions inside the image (what
 * the forward pass divides by) is added to each of them. Images [n0, n1).
 */
EXPORT(avg_pool_grad)
void avg_pool_grad(float *dx, const float *dy, int H, int W, int C, int Ho, int Wo, int kh, int kw, int sh, int sw, int top, int left, int n0,
                   int n1) {
  for (int n = n0; n < n1; n++) {
    float *img = dx + n * H * W * C;
    zero(img, H * W * C);
    for (int oh = 0; oh < Ho; oh++) {
      const int a0 = first_tap(oh, sh, top), a1 = end_tap(oh, sh, top, kh, H);
      for (int ow = 0; ow < Wo; ow++) {
        const int b0 = first_tap(ow, sw, left), b1 = end_tap(ow, sw, left, kw, W);
        const int count = (a1 - a0) * (b1 - b0);
        if (count <= 0) continue;
        const float scale = 1.0f / (float)count;
        const float *gp = dy + ((n * Ho + oh) * Wo + ow) * C;
        for (int a = a0; a < a1; a++) {
          float *row = img + ((oh * sh - top + a) * W + ow * sw - left) * C;
          for (int b = b0; b < b1; b++) {
            float *dst = row + b * C;
            int c = 0;
            for (; c + 4 <= C; c += 4) wasm_v128_store(dst + c, wasm_f32x4_add(wasm_v128_load(dst + c), wasm_f32x4_mul(wasm_v128_load(gp + c), wasm_f32x4_splat(scale))));
            for (; c < C; c++) dst[c] += gp[c] * scale;
          }
        }
      }
    }
  }
}
