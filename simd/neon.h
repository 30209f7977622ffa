// neon.h — the NEON kernels that simd/neondot.c reuses: everything except the int8 dot
// product (layout, packing, f32-activation products, quantization, attention, elementwise
// ops), all defined in simd/neon.c for baseline ARMv8-A Advanced SIMD.
#pragma once
#include "kernels.h"

#define ILM_NEON_ROWS 4  // interleave: one float32x4_t = 4 output rows

extern const ilm_kernels ilm_kernels_neon;

size_t ilm_neon_packed_size(int type, int rows, int K);
void ilm_neon_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1);
void ilm_neon_mm_f32(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y, int ldy);
void ilm_neon_mm_fa(const ilm_matrix *w, int r0, int r1, const void *x, int n, float *y, int ldy);
void ilm_neon_quantize_q8a(const float *x, int K, ilm_q8a *out);
void ilm_neon_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
                          float *scores);
void ilm_neon_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                          float *out);
void ilm_neon_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
void ilm_neon_rope_neox(float *x, int n_dims, const float *cs);
void ilm_neon_softmax(float *x, int n);
void ilm_neon_geglu(float *out, const float *gate, const float *up, int n);
void ilm_neon_softcap(float *x, int n, float cap);
void ilm_neon_f32_to_f16(const float *x, uint16_t *y, int n);
void ilm_neon_f16_to_f32(const uint16_t *x, float *y, int n);

// The table of a NEON set around its int8 kernel MM_Q8; the rest is simd/neon.c's (and the
// scalar dequant_row, simd/scalar.h).
#define ILM_NEON_KERNELS(NAME, MM_Q8)                                                          \
    {                                                                                          \
        .name = NAME, .interleave = ILM_NEON_ROWS, .packed_size = ilm_neon_packed_size,        \
        .pack = ilm_neon_pack, .mm_q8 = MM_Q8, .mm_f32 = ilm_neon_mm_f32, .mm_fa = ilm_neon_mm_fa,   \
        .quantize_q8a = ilm_neon_quantize_q8a, .attn_scores = ilm_neon_attn_scores,            \
        .attn_values = ilm_neon_attn_values, .rmsnorm = ilm_neon_rmsnorm,                      \
        .rope_neox = ilm_neon_rope_neox, .softmax = ilm_neon_softmax, .geglu = ilm_neon_geglu, \
        .softcap = ilm_neon_softcap, .f32_to_f16 = ilm_neon_f32_to_f16,                        \
        .f16_to_f32 = ilm_neon_f16_to_f32, .dequant_row = ilm_scalar_dequant_row,              \
    }
