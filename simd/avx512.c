// avx512.c — the AVX-512 (F/BW/VL/DQ) kernel set: Skylake-SP (2017) and later x86 servers
// without VNNI. The kernels live in simd/avx512_body.h; int8 dots use vpmaddubsw/vpmaddwd.
#define AVX512_VNNI 0
#define AVX512_BF16 0
#define AVX512_SET ilm_kernels_avx512
#define AVX512_NAME "avx512"
#include "avx512_body.h"
