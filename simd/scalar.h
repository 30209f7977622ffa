// scalar.h — the scalar reference kernels that the SIMD kernel sets reuse where their logic
// would be identical (format conversions, row dequantization, odd tails).
// Everything here is defined in simd/scalar.c and built for the baseline CPU.
#pragma once
#include "kernels.h"

extern const ilm_kernels ilm_kernels_scalar;

void ilm_scalar_dequant_row(int type, const void *src, float *y, int K);
void ilm_scalar_f32_to_f16(const float *x, uint16_t *y, int n);
void ilm_scalar_f16_to_f32(const uint16_t *x, float *y, int n);
