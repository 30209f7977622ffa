// half.h — portable f16 / bf16 <-> f32 conversion (docs/gemma4.md §5.1), pure C.
// SIMD kernels use hardware conversion; these are the bit-exact reference.
#pragma once
#include <stdint.h>
#include <string.h>

static inline uint32_t ilm_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ilm_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float ilm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return ilm_bits_f32(sign);
        // subnormal: value = man * 2^-24
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return ilm_bits_f32(sign | 0x7f800000u | (man << 13));
    return ilm_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

// Round to nearest even, like F16C's VCVTPS2PH with rounding mode 0.
static inline uint16_t ilm_f32_to_f16(float f) {
    uint32_t x = ilm_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // rounds to >= 65520: inf
    if (ax < 0x38800000u) {                                  // below 2^-14: subnormal or zero
        if (ax < 0x33000000u) return (uint16_t)sign;         // < 2^-25: rounds to zero
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                            // 14 + (113 - e) ... places the value at 2^-24 units
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1);  // round mantissa to 10 bits, ties to even
    r -= 0x38000000u;                            // rebias exponent 127 -> 15
    return (uint16_t)(sign | (r >> 13));
}

static inline float ilm_bf16_to_f32(uint16_t h) { return ilm_bits_f32((uint32_t)h << 16); }

static inline uint16_t ilm_f32_to_bf16(float f) {
    uint32_t u = ilm_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
