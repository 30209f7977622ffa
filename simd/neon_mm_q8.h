// neon_mm_q8.h — the NEON quantized-weight x Q8-activation kernel, shared by simd/neon.c
// (NEON_DOTPROD 0: vmull_s8 + vpadalq_s16) and simd/neondot.c (NEON_DOTPROD 1: SDOT).
// The including file defines NEON_DOTPROD and NEON_MM_Q8 (the function's name).
//
// Layout: simd/pack.h with 4 rows per group, so a 16-byte load holds 4 quant bytes of each
// of the 4 rows and lanes are output rows. Per block each lane gets the exact integer dot
// and then acc = fma(dw·da, (float)isum, acc), the scalar order: bit-identical results.
// NEON_MM_Q8 is the tile driver of simd/tile.h over mm_q8_tiles (1 group x 1..4 columns).
#include <arm_neon.h>
#include <string.h>

#include "kernels.h"
#include "neon.h"
#include "pack.h"
#include "tile.h"

#define QROWS ILM_NEON_ROWS
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE int8x16_t q8_bcast4(const int8_t *p) {
    int32_t t;
    memcpy(&t, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(t));
}

// Adds the dot of each 4-byte lane of w and a (one row's 4 elements) to the row sums.
#if NEON_DOTPROD
typedef struct { int32x4_t s; } q8_isum;
ALWAYS_INLINE void q8_isum_zero(q8_isum *z) { z->s = vdupq_n_s32(0); }
ALWAYS_INLINE void q8_isum_add(q8_isum *z, int8x16_t w, int8x16_t a) { z->s = vdotq_s32(z->s, w, a); }
ALWAYS_INLINE int32x4_t q8_isum_get(const q8_isum *z) { return z->s; }
#else
// Without SDOT: int16 products (|127·127| fits), pairwise-added into int32 as
// [r0 e01, r0 e23, r1 e01, r1 e23] and [r2 .., r3 ..]; one vpaddq per block folds them.
typedef struct { int32x4_t r01, r23; } q8_isum;
ALWAYS_INLINE void q8_isum_zero(q8_isum *z) { z->r01 = z->r23 = vdupq_n_s32(0); }
ALWAYS_INLINE void q8_isum_add(q8_isum *z, int8x16_t w, int8x16_t a) {
    z->r01 = vpadalq_s16(z->r01, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    z->r23 = vpadalq_s16(z->r23, vmull_high_s8(w, a));
}
ALWAYS_INLINE int32x4_t q8_isum_get(const q8_isum *z) {
    return vpaddq_s32(z->r01, z->r23);
}
#endif

ALWAYS_INLINE void q8_store_rows(float *y, float32x4_t v, int valid) {
    if (valid >= QROWS) {
        vst1q_f32(y, v);
    } else {
        float t[QROWS];
        vst1q_f32(t, v);
        memcpy(y, t, (size_t)valid * sizeof(float));
    }
}

// Writes a tile's acc[i][t] (group i, column t) to its place in y.
ALWAYS_INLINE void q8_store_tile(const ilm_tile *tl, int ng, int nc, float32x4_t (*acc)[ILM_TILE_COLS]) {
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++)
            q8_store_rows(tl->y + (size_t)t * tl->ldy + i * QROWS, acc[i][t], tl->valid - i * QROWS);
}

ALWAYS_INLINE void q8_group(int type, const char *grp, const uint16_t *scales, int nb, const ilm_q8a *x, int nc,
                            float32x4_t *acc) {
    for (int t = 0; t < nc; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        q8_isum isum[ILM_TILE_COLS];
        for (int t = 0; t < nc; t++) q8_isum_zero(&isum[t]);
        if (type == ILM_TYPE_Q8_0) {
            const int8_t *q = (const int8_t *)grp + (size_t)b * 32 * QROWS;
            for (int c = 0; c < 8; c++) {
                const int8x16_t w = vld1q_s8(q + 16 * c);
                for (int t = 0; t < nc; t++) q8_isum_add(&isum[t], w, q8_bcast4(x[(size_t)t * nb + b].qs + 4 * c));
            }
        } else {
            const uint8_t *q = (const uint8_t *)grp + (size_t)b * 16 * QROWS;
            for (int c = 0; c < 4; c++) {
                const uint8x16_t v = vld1q_u8(q + 16 * c);
                const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));  // 0..15
                const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                for (int t = 0; t < nc; t++) {
                    const ilm_q8a *a = &x[(size_t)t * nb + b];
                    q8_isum_add(&isum[t], lo, q8_bcast4(a->qs + 4 * c));
                    q8_isum_add(&isum[t], hi, q8_bcast4(a->qs + 16 + 4 * c));
                }
            }
        }
        const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(scales + (size_t)b * QROWS)));
        for (int t = 0; t < nc; t++) {
            const ilm_q8a *a = &x[(size_t)t * nb + b];
            int32x4_t s = q8_isum_get(&isum[t]);
            if (type == ILM_TYPE_Q4_0) s = vsubq_s32(s, vdupq_n_s32(8 * a->sum));  // Σ(q-8)·a
            const float32x4_t scale = vmulq_n_f32(dw, a->d);  // exact: fp16 x fp16
            acc[t] = vfmaq_f32(acc[t], scale, vcvtq_f32_s32(s));
        }
    }
}

// One tile: one group of 4 rows x nc columns.
ALWAYS_INLINE void mm_q8_tile(const ilm_tile *tl, int ng, int nc) {
    const uint16_t *scales = pk_scales(tl->grp, tl->type, tl->K, QROWS);
    float32x4_t acc[1][ILM_TILE_COLS];
    if (tl->type == ILM_TYPE_Q4_0) q8_group(ILM_TYPE_Q4_0, tl->grp, scales, tl->K / ILM_QK, tl->x, nc, acc[0]);
    else q8_group(ILM_TYPE_Q8_0, tl->grp, scales, tl->K / ILM_QK, tl->x, nc, acc[0]);
    q8_store_tile(tl, ng, nc, acc);
}
ILM_TILES_1x4(mm_q8_tiles, mm_q8_tile)

static void NEON_MM_Q8(const ilm_matrix *w, int r0, int r1, const ilm_q8a *x, int n, float *y, int ldy) {
    ilm_tile_drive(mm_q8_tiles, QROWS, ILM_TILE_GROUPS(mm_q8_tiles), w, r0, r1, x,
                   (size_t)(w->cols / ILM_QK) * sizeof *x, n, y, ldy);
}
