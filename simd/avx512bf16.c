// avx512bf16.c — the AVX-512 BF16 kernel set: Cooper Lake, Sapphire Rapids, Zen 4/5. The
// avx512vnni kernels (simd/avx512_body.h) plus VDPBF16PS for the float-activation products
// of `--act bf16` (mm_fa on bf16-rounded activations, round_bf16a).
#define AVX512_VNNI 1
#define AVX512_BF16 1
#define AVX512_SET ilm_kernels_avx512bf16
#define AVX512_NAME "avx512bf16"
#include "avx512_body.h"
