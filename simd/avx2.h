// avx2.h — AVX2 kernels that the AVX-512 sets reuse as they are.
//
// Activation quantization, the elementwise ops and the conversions are cheap next to the
// matrix products and gain little from 512-bit vectors, so simd/avx512*.c put these AVX2
// versions (defined in simd/avx2.c) in their tables; attention has its own 512-bit kernels.
// Only call them on a CPU that passed the AVX2 check in simd/dispatch.c.
#pragma once
#include "kernels.h"

extern const ilm_kernels ilm_kernels_avx2;

void ilm_avx2_quantize_q8a(const float *x, int K, ilm_q8a *out);
void ilm_avx2_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
                          float *scores);
void ilm_avx2_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                          float *out);
void ilm_avx2_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
void ilm_avx2_rope_neox(float *x, int n_dims, const float *cs);
void ilm_avx2_softmax(float *x, int n);
void ilm_avx2_geglu(float *out, const float *gate, const float *up, int n);
void ilm_avx2_softcap(float *x, int n, float cap);
void ilm_avx2_f32_to_f16(const float *x, uint16_t *y, int n);
void ilm_avx2_f16_to_f32(const uint16_t *x, float *y, int n);
void ilm_avx2_dequant_row(int type, const void *src, float *y, int K);
