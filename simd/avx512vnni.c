// avx512vnni.c — the AVX-512 VNNI kernel set: Cascade Lake (2019), Ice Lake, Sapphire Rapids,
// Zen 4/5. Same kernels as simd/avx512.c (simd/avx512_body.h) with int8 dots by VPDPBUSD.
#define AVX512_VNNI 1
#define AVX512_BF16 0
#define AVX512_SET ilm_kernels_avx512vnni
#define AVX512_NAME "avx512vnni"
#include "avx512_body.h"
