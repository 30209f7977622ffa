// neondot.c — the aarch64 kernel set with the dot-product extension (ARMv8.2+ SDOT:
// Cortex-A76, Neoverse N1/V1, Apple M1, Graviton 2/3). Only the int8 kernel differs from
// simd/neon.c: vdotq_s32 sums 4 products per row lane. Everything else is neon.c's.
#include "neon.h"
#include "scalar.h"

#define NEON_DOTPROD 1
#define NEON_MM_Q8 neondot_mm_q8
#include "neon_mm_q8.h"

const ilm_kernels ilm_kernels_neondot = {
    .name = "neondot",
    .interleave = ILM_NEON_ROWS,
    .packed_size = ilm_neon_packed_size,
    .pack = ilm_neon_pack,
    .mm_q8 = neondot_mm_q8,
    .mm_f32 = ilm_neon_mm_f32,
    .quantize_q8a = ilm_neon_quantize_q8a,
    .attn_scores = ilm_neon_attn_scores,
    .attn_values = ilm_neon_attn_values,
    .rmsnorm = ilm_neon_rmsnorm,
    .rope_neox = ilm_neon_rope_neox,
    .softmax = ilm_neon_softmax,
    .geglu = ilm_neon_geglu,
    .softcap = ilm_neon_softcap,
    .f32_to_f16 = ilm_neon_f32_to_f16,
    .f16_to_f32 = ilm_neon_f16_to_f32,
    .dequant_row = ilm_scalar_dequant_row,
};
