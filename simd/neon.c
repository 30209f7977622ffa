// neon.c — the baseline aarch64 kernel set (ARMv8.0 Advanced SIMD: Cortex-A53/A72,
// Graviton 1). simd/neondot.c reuses everything here except the int8 dot product.
//
// Matrix products use the 4-row interleaved layout of simd/pack.h (lanes = output rows)
// and are bit-identical to simd/scalar.c (kernels.h contract); mm_f32 is the tile driver of
// simd/tile.h over mm_f32_tiles (1..2 groups x 1..4 columns). mm_fa (`--act bf16`): per-block
// f32 FMA chains on f32 activations (no bfdot yet). exp/tanh are Cephes-style
// polynomials, the same as simd/x86_math.h.
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "neon.h"
#include "pack.h"
#include "scalar.h"

#define NEON_DOTPROD 0
#define NEON_MM_Q8 neon_mm_q8
#include "neon_mm_q8.h"

#define ROWS ILM_NEON_ROWS

size_t ilm_neon_packed_size(int type, int rows, int K) { return pk_packed_size(type, rows, K, ROWS); }

void ilm_neon_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1) {
    pk_pack(type, src, rows, K, dst, r0, r1, ROWS, 0);
}

// ---- any weights x f32 activations --------------------------------------------------------

ALWAYS_INLINE float32x4_t float_weights(int type, const char *grp, int k) {
    switch (type) {
    case ILM_TYPE_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)grp + (size_t)k * ROWS)));
    case ILM_TYPE_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)grp + (size_t)k * ROWS), 16));
    default:
        return vld1q_f32((const float *)grp + (size_t)k * ROWS);
    }
}

// Element at bit `shift` of each row's 4-byte lane, as the exact weight value.
ALWAYS_INLINE float32x4_t quant_weights(int type, uint32x4_t v, int shift, float32x4_t dw) {
    int32x4_t q;
    if (type == ILM_TYPE_Q4_0) {
        const uint32x4_t u = vandq_u32(vshlq_u32(v, vdupq_n_s32(-shift)), vdupq_n_u32(15));
        q = vsubq_s32(vreinterpretq_s32_u32(u), vdupq_n_s32(8));
    } else {  // sign-extend byte: shift it to the top, arithmetic shift back down
        q = vshlq_s32(vshlq_s32(vreinterpretq_s32_u32(v), vdupq_n_s32(24 - shift)), vdupq_n_s32(-24));
    }
    return vmulq_f32(vcvtq_f32_s32(q), dw);
}

// One tile of a constant type: ng groups of 4 rows x nc columns, per lane the scalar fma
// chain over k. Two groups x 4 columns: 8 independent chains hide the fma latency.
ALWAYS_INLINE void f32_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    const int K = tl->K;
    const float *x = tl->x;
    float32x4_t acc[2][ILM_TILE_COLS];
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++) acc[i][t] = vdupq_n_f32(0.0f);
    if (type == ILM_TYPE_F32 || type == ILM_TYPE_F16 || type == ILM_TYPE_BF16) {
        for (int k = 0; k < K; k++) {
            float32x4_t wv[2];
            for (int i = 0; i < ng; i++) wv[i] = float_weights(type, grp[i], k);
            for (int t = 0; t < nc; t++) {
                const float xv = x[(size_t)t * K + k];
                for (int i = 0; i < ng; i++) acc[i][t] = vfmaq_n_f32(acc[i][t], wv[i], xv);
            }
        }
        q8_store_tile(tl, ng, nc, acc);
        return;
    }
    const int nb = K / ILM_QK, nchunks = type == ILM_TYPE_Q4_0 ? 4 : 8, nhalves = type == ILM_TYPE_Q4_0 ? 2 : 1;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    for (int b = 0; b < nb; b++) {
        float32x4_t dw[2];
        for (int i = 0; i < ng; i++)
            dw[i] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS)));
        const float *xb = x + (size_t)b * ILM_QK;
        for (int h = 0; h < nhalves; h++) {
            for (int c = 0; c < nchunks; c++) {
                uint32x4_t v[2];
                for (int i = 0; i < ng; i++) v[i] = vld1q_u32((const uint32_t *)(grp[i] + b * qb) + 4 * c);
                for (int e = 0; e < 4; e++) {
                    const int j = 16 * h + 4 * c + e;
                    float32x4_t wv[2];
                    for (int i = 0; i < ng; i++) wv[i] = quant_weights(type, v[i], 8 * e + 4 * h, dw[i]);
                    for (int t = 0; t < nc; t++) {
                        const float xv = xb[(size_t)t * K + j];
                        for (int i = 0; i < ng; i++) acc[i][t] = vfmaq_n_f32(acc[i][t], wv[i], xv);
                    }
                }
            }
        }
    }
    q8_store_tile(tl, ng, nc, acc);
}

ALWAYS_INLINE void mm_f32_tile(const ilm_tile *tl, int ng, int nc) {
    switch (tl->type) { ILM_TILE_TYPE_CASES(f32_tile, tl, ng, nc) default: break; }
}
ILM_TILES_2x4(mm_f32_tiles, mm_f32_tile)

void ilm_neon_mm_f32(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y, int ldy) {
    ilm_tile_drive(mm_f32_tiles, ROWS, ILM_TILE_GROUPS(mm_f32_tiles), w, r0, r1, x, (size_t)w->cols * sizeof *x,
                   n, y, ldy);
}

// ---- Q4_0/Q8_0 weights x f32 activations, per block (mm_fa) --------------------------------

// Per (row, column) and block: element j = 16h + 4c + e (Q4_0: h 0..1, c 0..3; Q8_0: h 0,
// c 0..7); one product chain over c per (h, e), the chains added in (h, e) order into s_b,
// then acc = fma(d_b, s_b, acc): independent chains instead of the exact path's one chain
// per row, and the scale once per block. No activation rounding (f32 FMAs).
ALWAYS_INLINE void fa_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    const int K = tl->K, nb = K / ILM_QK;
    const float *x = tl->x;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    const int nparts = type == ILM_TYPE_Q4_0 ? 8 : 4, nchunks = type == ILM_TYPE_Q4_0 ? 4 : 8;
    float32x4_t acc[2][ILM_TILE_COLS];
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++) acc[i][t] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        float32x4_t s[2][ILM_TILE_COLS];
        for (int i = 0; i < ng; i++)
            for (int t = 0; t < nc; t++) s[i][t] = vdupq_n_f32(0.0f);  // set below; quiets gcc
        const float *xb = x + (size_t)b * ILM_QK;
        for (int p = 0; p < nparts; p++) {
            const int h = p / 4, e = p % 4;
            float32x4_t part[2][ILM_TILE_COLS];
            for (int i = 0; i < ng; i++)
                for (int t = 0; t < nc; t++) part[i][t] = vdupq_n_f32(0.0f);
            for (int c = 0; c < nchunks; c++) {
                float32x4_t w[2];
                for (int i = 0; i < ng; i++) {
                    const uint32x4_t v = vld1q_u32((const uint32_t *)(grp[i] + b * qb) + 4 * c);
                    int32x4_t q;
                    if (type == ILM_TYPE_Q4_0)
                        q = vsubq_s32(vreinterpretq_s32_u32(vandq_u32(vshlq_u32(v, vdupq_n_s32(-(8 * e + 4 * h))), vdupq_n_u32(15))),
                                      vdupq_n_s32(8));
                    else
                        q = vshlq_s32(vshlq_s32(vreinterpretq_s32_u32(v), vdupq_n_s32(24 - 8 * e)), vdupq_n_s32(-24));
                    w[i] = vcvtq_f32_s32(q);
                }
                for (int t = 0; t < nc; t++) {
                    const float xv = xb[(size_t)t * K + 16 * h + 4 * c + e];
                    for (int i = 0; i < ng; i++) part[i][t] = c ? vfmaq_n_f32(part[i][t], w[i], xv) : vmulq_n_f32(w[i], xv);
                }
            }
            for (int i = 0; i < ng; i++)
                for (int t = 0; t < nc; t++) s[i][t] = p ? vaddq_f32(s[i][t], part[i][t]) : part[i][t];
        }
        for (int i = 0; i < ng; i++) {
            const float32x4_t dw =
                vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS)));
            for (int t = 0; t < nc; t++) acc[i][t] = vfmaq_f32(acc[i][t], dw, s[i][t]);
        }
    }
    q8_store_tile(tl, ng, nc, acc);
}

ALWAYS_INLINE void mm_fa_tile(const ilm_tile *tl, int ng, int nc) {
    if (tl->type == ILM_TYPE_Q4_0) fa_tile(ILM_TYPE_Q4_0, tl, ng, nc);
    else fa_tile(ILM_TYPE_Q8_0, tl, ng, nc);
}
ILM_TILES_2x4(mm_fa_tiles, mm_fa_tile)

void ilm_neon_mm_fa(const ilm_matrix *w, int r0, int r1, const void *x, int n, float *y, int ldy) {
    ilm_tile_drive(mm_fa_tiles, ROWS, ILM_TILE_GROUPS(mm_fa_tiles), w, r0, r1, x, (size_t)w->cols * sizeof(float), n,
                   y, ldy);
}

// ---- activation quantization --------------------------------------------------------------

// Same arithmetic as the scalar reference; vcvtnq rounds half to even like rintf.
void ilm_neon_quantize_q8a(const float *x, int K, ilm_q8a *out) {
    for (int b = 0; b < K / ILM_QK; b++) {
        const float *xb = x + b * ILM_QK;
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) v[i] = vld1q_f32(xb + 4 * i), m = vmaxq_f32(m, vabsq_f32(v[i]));
        const float amax = vmaxvq_f32(m);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        // fp16 round trip in hardware (default FPCR rounding: to nearest even, as ilm_f32_to_f16)
        out[b].d = vgetq_lane_f32(vcvt_f32_f16(vcvt_f16_f32(vdupq_n_f32(amax / 127.0f))), 0);
        int32x4_t s = vdupq_n_s32(0);
        int16x8_t h[4];
        for (int i = 0; i < 4; i++) {
            const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i], id));
            const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[2 * i + 1], id));
            s = vaddq_s32(s, vaddq_s32(q0, q1));
            h[i] = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
        }
        vst1q_s8(out[b].qs, vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
        vst1q_s8(out[b].qs + 16, vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])));
        out[b].sum = vaddvq_s32(s);
    }
}

// ---- attention ----------------------------------------------------------------------------

ALWAYS_INLINE float32x4_t kv_load4(const void *row, int kv_type, int d) {
    return kv_type == ILM_TYPE_F16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + d)))
                                   : vld1q_f32((const float *)row + d);
}

ALWAYS_INLINE float kv_elem(const void *row, int kv_type, int d) {
    return kv_type == ILM_TYPE_F16 ? ilm_f16_to_f32(((const uint16_t *)row)[d]) : ((const float *)row)[d];
}

void ilm_neon_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
                          float *scores) {
    for (int j = 0; j < n; j++) {
        const void *kj = (const char *)k + (size_t)j * stride;
        float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
        int d = 0;
        for (; d + 8 <= hd; d += 8) {
            s0 = vfmaq_f32(s0, vld1q_f32(q + d), kv_load4(kj, kv_type, d));
            s1 = vfmaq_f32(s1, vld1q_f32(q + d + 4), kv_load4(kj, kv_type, d + 4));
        }
        for (; d + 4 <= hd; d += 4) s0 = vfmaq_f32(s0, vld1q_f32(q + d), kv_load4(kj, kv_type, d));
        float s = vaddvq_f32(vaddq_f32(s0, s1));
        for (; d < hd; d++) s = fmaf(q[d], kv_elem(kj, kv_type, d), s);
        scores[j] = s;
    }
}

// Lanes over d, j in order: the scalar fma chain per element (bit-identical).
void ilm_neon_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                          float *out) {
    int d = 0;
    for (; d + 16 <= hd; d += 16) {
        float32x4_t o[4];
        for (int i = 0; i < 4; i++) o[i] = vld1q_f32(out + d + 4 * i);
        for (int j = 0; j < n; j++) {
            const void *vj = (const char *)v + (size_t)j * stride;
            for (int i = 0; i < 4; i++) o[i] = vfmaq_n_f32(o[i], kv_load4(vj, kv_type, d + 4 * i), p[j]);
        }
        for (int i = 0; i < 4; i++) vst1q_f32(out + d + 4 * i, o[i]);
    }
    for (; d + 4 <= hd; d += 4) {
        float32x4_t o = vld1q_f32(out + d);
        for (int j = 0; j < n; j++) o = vfmaq_n_f32(o, kv_load4((const char *)v + (size_t)j * stride, kv_type, d), p[j]);
        vst1q_f32(out + d, o);
    }
    for (; d < hd; d++)
        for (int j = 0; j < n; j++) out[d] = fmaf(p[j], kv_elem((const char *)v + (size_t)j * stride, kv_type, d), out[d]);
}

// ---- elementwise / reductions -------------------------------------------------------------

void ilm_neon_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);  // double, like the reference
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (int k = i; k < n; k++) ss += (double)x[k] * x[k];
    const float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), scale);
        if (w) v = vmulq_f32(v, vld1q_f32(w + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void ilm_neon_rope_neox(float *x, int n_dims, const float *cs) {
    const int half = n_dims / 2;
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        const float32x4x2_t t = vld2q_f32(cs + 2 * i);  // de-interleaves (cos, sin)
        const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + half);
        vst1q_f32(x + i, vsubq_f32(vmulq_f32(a, t.val[0]), vmulq_f32(b, t.val[1])));
        vst1q_f32(x + i + half, vaddq_f32(vmulq_f32(b, t.val[0]), vmulq_f32(a, t.val[1])));
    }
    for (; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1], a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

// Cephes expf, as simd/x86_math.h; below -87.33 exactly 0.
static inline float32x4_t exp4(float32x4_t x) {
    const uint32x4_t underflow = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    x = vminq_f32(x, vdupq_n_f32(88.37626f));
    x = vmaxq_f32(x, vdupq_n_f32(-87.33654f));
    const float32x4_t fx = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), underflow));
}

// Cephes tanhf: odd polynomial below |x| = 0.625, 1 - 2/(exp(2|x|)+1) above.
static inline float32x4_t tanh4(float32x4_t x) {
    const float32x4_t ax = vabsq_f32(x), z = vmulq_f32(x, x);
    float32x4_t p = vdupq_n_f32(-5.70498872745e-3f);
    p = vfmaq_f32(vdupq_n_f32(2.06390887954e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-5.37397155531e-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(1.33314422036e-1f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-3.33332819422e-1f), p, z);
    const float32x4_t small = vfmaq_f32(x, vmulq_f32(p, z), x);
    const float32x4_t e = exp4(vminq_f32(vaddq_f32(ax, ax), vdupq_n_f32(88.0f)));
    const float32x4_t big = vsubq_f32(vdupq_n_f32(1.0f), vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    const float32x4_t big_signed = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big), sign));
    return vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.625f)), small, big_signed);
}

void ilm_neon_softmax(float *x, int n) {
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
    float mx = vmaxvq_f32(mv);
    for (int k = i; k < n; k++) mx = fmaxf(mx, x[k]);
    float32x4_t sv = vdupq_n_f32(0);
    for (i = 0; i + 4 <= n; i += 4) {
        const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(mx)));
        vst1q_f32(x + i, e);
        sv = vaddq_f32(sv, e);
    }
    double sum = vaddvq_f32(sv);
    for (; i < n; i++) {
        x[i] = vgetq_lane_f32(exp4(vdupq_n_f32(x[i] - mx)), 0);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++) x[i] *= inv;
}

// 0.5·g·(1 + tanh(u)) computed as g / (1 + exp(-2u)): no cancellation near tanh = -1.
static inline float32x4_t geglu4(float32x4_t g, float32x4_t up) {
    const float32x4_t u = vmulq_n_f32(vfmaq_f32(g, vmulq_n_f32(g, 0.044715f), vmulq_f32(g, g)), 0.7978845608f);
    const float32x4_t e = exp4(vmulq_n_f32(u, -2.0f));
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), up);
}

void ilm_neon_geglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, geglu4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    for (; i < n; i++) out[i] = vgetq_lane_f32(geglu4(vdupq_n_f32(gate[i]), vdupq_n_f32(up[i])), 0);
}

void ilm_neon_softcap(float *x, int n, float cap) {
    const float ic = 1.0f / cap;
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(tanh4(vmulq_n_f32(vld1q_f32(x + i), ic)), cap));
    for (; i < n; i++) x[i] = vgetq_lane_f32(vmulq_n_f32(tanh4(vdupq_n_f32(x[i] * ic)), cap), 0);
}

// ---- conversions --------------------------------------------------------------------------

void ilm_neon_f32_to_f16(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) y[i] = ilm_f32_to_f16(x[i]);
}

void ilm_neon_f16_to_f32(const uint16_t *x, float *y, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    for (; i < n; i++) y[i] = ilm_f16_to_f32(x[i]);
}

const ilm_kernels ilm_kernels_neon = ILM_NEON_KERNELS("neon", neon_mm_q8);
