// neondot.c — the aarch64 kernel set with the dot-product extension (ARMv8.2+ SDOT:
// Cortex-A76, Neoverse N1/V1, Apple M1, Graviton 2/3). Only the int8 kernel differs from
// simd/neon.c: vdotq_s32 sums 4 products per row lane. Everything else is neon.c's.
#include "neon.h"
#include "scalar.h"

#define NEON_DOTPROD 1
#define NEON_MM_Q8 neondot_mm_q8
#include "neon_mm_q8.h"

const ilm_kernels ilm_kernels_neondot = ILM_NEON_KERNELS("neondot", neondot_mm_q8);
