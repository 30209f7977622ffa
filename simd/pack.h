// pack.h — the row-interleaved weight layout shared by every SIMD kernel set (plain C).
//
// Rows are packed in groups of R (the set's interleave; the last group is padded with zero
// rows) so that one vector load feeds R output rows ("lanes = output rows", like
// ik_llama.cpp's Q8_0_R8 / Q4_0_R8). Each group starts on a 64-byte boundary.
//
//  * F32 / F16 / BF16: element (k, r) of the group at index k*R + r — for each k, R values.
//  * Q4_0 / Q8_0: first nb quant blocks, then nb blocks of R fp16 scales (d[b][r]).
//    A quant block holds the GGUF qs bytes of R rows as [chunk c][row r][4 bytes]: qs byte
//    j = 4c + i of row r sits at c*4R + r*4 + i. So one 4R-byte load holds 4 qs bytes of
//    every row: for Q8_0 elements 4c..4c+3; for Q4_0 elements 4c..4c+3 (low nibbles) and
//    16+4c..16+4c+3 (high nibbles). Q4_0 has 4 chunks (16R bytes), Q8_0 has 8 (32R bytes).
//    q8_offset = 1 (VNNI sets) stores Q8_0 quants as q ^ 0x80 = q + 128, unsigned.
#pragma once
#include <stdint.h>
#include <string.h>

#include "kernels.h"

static inline size_t pk_quant_block_bytes(int type, int R) {
    return type == ILM_TYPE_Q4_0 ? (size_t)16 * R : (size_t)32 * R;
}

// Bytes of one packed group of R rows (padded to 64 so every group starts aligned).
static inline size_t pk_group_bytes(int type, int K, int R) {
    size_t b;
    switch (type) {
    case ILM_TYPE_F32: b = (size_t)K * R * 4; break;
    case ILM_TYPE_F16:
    case ILM_TYPE_BF16: b = (size_t)K * R * 2; break;
    case ILM_TYPE_Q4_0:
    case ILM_TYPE_Q8_0: b = (size_t)(K / ILM_QK) * (pk_quant_block_bytes(type, R) + 2 * (size_t)R); break;
    default: return 0;
    }
    return (b + 63) / 64 * 64;
}

static inline size_t pk_packed_size(int type, int rows, int K, int R) {
    return (size_t)((rows + R - 1) / R) * pk_group_bytes(type, K, R);
}

// Scales of group g start after its nb quant blocks.
static inline const uint16_t *pk_scales(const void *group, int type, int K, int R) {
    return (const uint16_t *)((const char *)group + (size_t)(K / ILM_QK) * pk_quant_block_bytes(type, R));
}

static inline void pk_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1,
                           int R, int q8_offset) {
    const size_t row_bytes = ilm_row_bytes(type, K), gbytes = pk_group_bytes(type, K, R);
    const int nb = K / ILM_QK;
    for (int g = r0 / R; g * R < r1; g++) {
        char *grp = (char *)dst + (size_t)g * gbytes;
        memset(grp, 0, gbytes);  // padding rows (and padding bytes) are zero
        for (int r = 0; r < R && g * R + r < rows; r++) {
            const char *row = (const char *)src + (size_t)(g * R + r) * row_bytes;
            switch (type) {
            case ILM_TYPE_F32:
            case ILM_TYPE_F16:
            case ILM_TYPE_BF16: {
                const size_t es = type == ILM_TYPE_F32 ? 4 : 2;
                for (int k = 0; k < K; k++)
                    memcpy(grp + ((size_t)k * R + r) * es, row + (size_t)k * es, es);
                break;
            }
            case ILM_TYPE_Q4_0:
            case ILM_TYPE_Q8_0: {
                const size_t qb = pk_quant_block_bytes(type, R);
                const size_t blk_bytes = type == ILM_TYPE_Q4_0 ? sizeof(ilm_block_q4_0) : sizeof(ilm_block_q8_0);
                const int nq = type == ILM_TYPE_Q4_0 ? 16 : 32;
                uint16_t *scales = (uint16_t *)(grp + (size_t)nb * qb);
                for (int b = 0; b < nb; b++) {
                    const unsigned char *blk = (const unsigned char *)row + (size_t)b * blk_bytes;
                    uint16_t d;
                    memcpy(&d, blk, 2);
                    scales[(size_t)b * R + r] = d;
                    unsigned char *q = (unsigned char *)grp + (size_t)b * qb;
                    for (int j = 0; j < nq; j++) {
                        unsigned char v = blk[2 + j];
                        if (type == ILM_TYPE_Q8_0 && q8_offset) v ^= 0x80;
                        q[(size_t)(j / 4) * 4 * R + (size_t)r * 4 + j % 4] = v;
                    }
                }
                break;
            }
            default: break;
            }
        }
    }
}
