// avx2.c — the AVX2 + FMA + F16C kernel set (Haswell / Zen 1 and later; the 2016 Xeon floor).
// Length: one ISA, one file — every kernel of the set is compiled with its -m flags and shares
// its layout helpers (store_tile, bcast4, prefetch_ahead) and its table; simd/avx2.h exports the
// pieces the AVX-512 sets reuse.
//
// Matrix products use the 8-row interleaved layout of simd/pack.h: lanes are output rows,
// so every lane runs exactly the scalar reference's sequence of operations (kernels.h) and
// results are bit-identical to simd/scalar.c. int8 dots: vpmaddubsw + vpmaddwd, with the
// abs/sign trick for Q8_0 (|w| unsigned, a·sign(w) signed; both within ±127, no int16
// saturation) and unsigned nibbles for Q4_0 (corrected by -8·Σa from the activation block).
// mm_fa (Q4_0/Q8_0 x f32 activations, per-block, `--act bf16`; no activation rounding):
// nibbles/bytes to exact floats, independent FMA chains per block, then × the block scale.
// mm_q8 / mm_f32 / mm_fa are the tile driver of simd/tile.h over this file's tile tables
// (mm_q8_tiles, mm_fa_tiles: 1 group x 1..4 columns; mm_q8_col1: 1..4 groups x 1 column;
// mm_f32_tiles: 1..2 groups x 1..4 columns).
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "avx2.h"
#include "half.h"
#include "kernels.h"
#include "pack.h"
#include "scalar.h"
#include "tile.h"
#include "x86_math.h"

#define ROWS 8       // interleave: one __m256 of f32 = 8 output rows
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PREFETCH_BLOCKS 32  // quant blocks ahead in a packed group's stream

static size_t avx2_packed_size(int type, int rows, int K) { return pk_packed_size(type, rows, K, ROWS); }

static void avx2_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1) {
    pk_pack(type, src, rows, K, dst, r0, r1, ROWS, 0);
}

// Writes the first `valid` of 8 row results of one column.
ALWAYS_INLINE void store_rows(float *y, __m256 v, int valid) {
    if (valid >= ROWS) {
        _mm256_storeu_ps(y, v);
    } else {
        float t[ROWS];
        _mm256_storeu_ps(t, v);
        memcpy(y, t, (size_t)valid * sizeof(float));
    }
}

// Writes a tile's acc[i][t] (group i, column t) to its place in y.
ALWAYS_INLINE void store_tile(const ilm_tile *tl, int ng, int nc, __m256 (*acc)[ILM_TILE_COLS]) {
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++) store_rows(tl->y + (size_t)t * tl->ldy + i * ROWS, acc[i][t], tl->valid - i * ROWS);
}

// 4 activation bytes broadcast to every 32-bit lane (one row's 4-byte chunk per lane).
ALWAYS_INLINE __m256i bcast4(const int8_t *p) {
    int32_t t;
    memcpy(&t, p, 4);
    return _mm256_set1_epi32(t);
}

// ---- quantized weights x Q8 activations ---------------------------------------------------

// The lines of one quant block, PREFETCH_BLOCKS blocks on: GEMV is bound by the lines in
// flight, and the out-of-order window alone keeps too few (Zen 5, 2 threads, n = 1: Q4_0 28
// -> 37 GB/s, Q8_0 35 -> 44 GB/s with 2 KB ahead; 32 blocks (8.5 KB Q8_0, 4.5 KB Q4_0) gave
// Q8_0 another -10%, as on AVX-512).
ALWAYS_INLINE void prefetch_ahead(const void *block, int bytes) {
#pragma GCC unroll 4
    for (int l = 0; l < bytes; l += 64) _mm_prefetch((const char *)block + (size_t)PREFETCH_BLOCKS * bytes + l, _MM_HINT_T0);
}

// One-column tiles: the lines of block b + PREFETCH_BLOCKS of group stream g (qb bytes per
// block, nb blocks); past the group's last block, the same place in the group this stream
// reads in the thread's next tile (next bytes on), instead of the groups beside it, which
// the tile is already reading.
ALWAYS_INLINE void prefetch_col1(const char *g, int b, int nb, int qb, size_t next) {
    const int pb = b + PREFETCH_BLOCKS;
    const char *p = pb < nb ? g + (size_t)pb * qb : g + next + (size_t)(pb - nb) * qb;
#pragma GCC unroll 4
    for (int l = 0; l < qb; l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
}

// One group of 8 rows against nc columns (nc a constant after inlining): acc[t] per column.
// The column loops are unrolled by force so the per-column sums stay in registers (rolled,
// they live on the stack: 2-3x slower); the chunk loop stays rolled, unrolled gcc spills.
ALWAYS_INLINE void q8_0_group(const char *grp, const uint16_t *scales, int nb, const ilm_q8a *x,
                              int nbx, int nc, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m256i *q = (const __m256i *)(grp + (size_t)b * 32 * ROWS);
        prefetch_ahead(q, 32 * ROWS);
        __m256i isum[ILM_TILE_COLS];
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) isum[t] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            const __m256i w = _mm256_loadu_si256(q + c);
            const __m256i aw = _mm256_sign_epi8(w, w);  // |w| as unsigned (-128 -> 128)
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const ilm_q8a *a = x + (size_t)t * nbx + b;
                const __m256i sa = _mm256_sign_epi8(bcast4(a->qs + 4 * c), w);
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), ones);
                isum[t] = _mm256_add_epi32(isum[t], p);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + (size_t)b * ROWS)));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const ilm_q8a *a = x + (size_t)t * nbx + b;
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a->d));  // exact: fp16 x fp16
            acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
}

ALWAYS_INLINE void q4_0_group(const char *grp, const uint16_t *scales, int nb, const ilm_q8a *x,
                              int nbx, int nc, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const __m256i *q = (const __m256i *)(grp + (size_t)b * 16 * ROWS);
        prefetch_ahead(q, 16 * ROWS);
        // int16 lanes: 8 vpmaddubsw results of |2·15·127| each stay below 32767.
        __m256i s16[ILM_TILE_COLS];
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) s16[t] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i v = _mm256_loadu_si256(q + c);
            const __m256i lo = _mm256_and_si256(v, low4);                         // elements 4c..
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);   // 16+4c..
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const ilm_q8a *a = x + (size_t)t * nbx + b;
                const __m256i plo = _mm256_maddubs_epi16(lo, bcast4(a->qs + 4 * c));
                const __m256i phi = _mm256_maddubs_epi16(hi, bcast4(a->qs + 16 + 4 * c));
                s16[t] = _mm256_add_epi16(s16[t], _mm256_add_epi16(plo, phi));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales + (size_t)b * ROWS)));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const ilm_q8a *a = x + (size_t)t * nbx + b;
            // Σ(q-8)·a = Σq·a - 8·Σa
            const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(s16[t], ones), _mm256_set1_epi32(8 * a->sum));
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a->d));
            acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc[t]);
        }
    }
}

#define COL1_GROUPS 4  // row groups per one-column tile

// Q4_0, one column, ng groups (decode): each activation broadcast feeds every group, and
// the groups' streams are read side by side. Per (row, block) the sequence of q4_0_group.
ALWAYS_INLINE void q4_0_col1(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, size_t next, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
    for (int i = 0; i < ng; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const ilm_q8a *a = x + b;
        __m256i s16[COL1_GROUPS];
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) prefetch_col1(grp[i], b, nb, 16 * ROWS, next), s16[i] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i alo = bcast4(a->qs + 4 * c), ahi = bcast4(a->qs + 16 + 4 * c);
#pragma GCC unroll 4
            for (int i = 0; i < ng; i++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(grp[i] + (size_t)b * 16 * ROWS) + c);
                const __m256i plo = _mm256_maddubs_epi16(_mm256_and_si256(v, low4), alo);
                const __m256i phi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), ahi);
                s16[i] = _mm256_add_epi16(s16[i], _mm256_add_epi16(plo, phi));
            }
        }
        const __m256 da = _mm256_set1_ps(a->d);
        const __m256i a8 = _mm256_set1_epi32(8 * a->sum);
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales[i] + (size_t)b * ROWS)));
            const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(s16[i], ones), a8);
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum), acc[i]);
        }
    }
}

// Q8_0, one column, ng groups: as q4_0_col1, per (row, block) the sequence of q8_0_group.
ALWAYS_INLINE void q8_0_col1(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, size_t next, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int i = 0; i < ng; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const ilm_q8a *a = x + b;
        __m256i isum[COL1_GROUPS];
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) prefetch_col1(grp[i], b, nb, 32 * ROWS, next), isum[i] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) {
            const __m256i av = bcast4(a->qs + 4 * c);
#pragma GCC unroll 4
            for (int i = 0; i < ng; i++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(grp[i] + (size_t)b * 32 * ROWS) + c);
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w)), ones);
                isum[i] = _mm256_add_epi32(isum[i], p);
            }
        }
        const __m256 da = _mm256_set1_ps(a->d);
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scales[i] + (size_t)b * ROWS)));
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum[i]), acc[i]);
        }
    }
}

// One tile: one group of 8 rows x nc columns (4 accumulators + temporaries fit in 16 ymm).
ALWAYS_INLINE void mm_q8_tile(const ilm_tile *tl, int ng, int nc) {
    const int nb = tl->K / ILM_QK;
    const uint16_t *scales = pk_scales(tl->grp, tl->type, tl->K, ROWS);
    __m256 acc[1][ILM_TILE_COLS];
    if (tl->type == ILM_TYPE_Q4_0) q4_0_group(tl->grp, scales, nb, tl->x, nb, nc, acc[0]);
    else q8_0_group(tl->grp, scales, nb, tl->x, nb, nc, acc[0]);
    store_tile(tl, ng, nc, acc);
}
ILM_TILES_1x4(mm_q8_tiles, mm_q8_tile)

// One column (decode): up to COL1_GROUPS groups per tile (q4_0_col1, q8_0_col1: Zen 5, 2
// threads, 1 GiB streamed: Q4_0 37 -> 46-53 GB/s, Q8_0 47 -> 58 GB/s).
ALWAYS_INLINE void mm_q8_col1_tile(const ilm_tile *tl, int ng) {
    const char *grp[COL1_GROUPS];
    const uint16_t *scales[COL1_GROUPS];
    for (int i = 0; i < COL1_GROUPS; i++)
        grp[i] = tl->grp + (size_t)(i < ng ? i : ng - 1) * tl->gbytes, scales[i] = pk_scales(grp[i], tl->type, tl->K, ROWS);
    __m256 acc[COL1_GROUPS][ILM_TILE_COLS], a1[COL1_GROUPS];
    const size_t next = (size_t)ng * tl->gbytes;   // group i of the next tile
    if (tl->type == ILM_TYPE_Q4_0) q4_0_col1(grp, scales, ng, tl->K / ILM_QK, tl->x, next, a1);
    else q8_0_col1(grp, scales, ng, tl->K / ILM_QK, tl->x, next, a1);
    for (int i = 0; i < ng; i++) acc[i][0] = a1[i];
    store_tile(tl, ng, 1, acc);
}
static void mm_q8_col1_2(const ilm_tile *t) { mm_q8_col1_tile(t, 2); }
static void mm_q8_col1_3(const ilm_tile *t) { mm_q8_col1_tile(t, 3); }
static void mm_q8_col1_4(const ilm_tile *t) { mm_q8_col1_tile(t, 4); }
// ng 1: the 1 x 1 tile (one stream; the same sums and scale step)
static const ilm_tile_fn mm_q8_col1[COL1_GROUPS][ILM_TILE_COLS] = {{mm_q8_tiles_1x1}, {mm_q8_col1_2}, {mm_q8_col1_3}, {mm_q8_col1_4}};

static void avx2_mm_q8(const ilm_matrix *w, int r0, int r1, const ilm_q8a *x, int n, float *y, int ldy) {
    const size_t col_bytes = (size_t)(w->cols / ILM_QK) * sizeof *x;
    if (n == 1) ilm_tile_drive(mm_q8_col1, ROWS, COL1_GROUPS, w, r0, r1, x, col_bytes, n, y, ldy);
    else ilm_tile_drive(mm_q8_tiles, ROWS, ILM_TILE_GROUPS(mm_q8_tiles), w, r0, r1, x, col_bytes, n, y, ldy);
}

// ---- any weights x f32 activations --------------------------------------------------------

// Weights of one k for the 8 rows of a float-typed group.
ALWAYS_INLINE __m256 float_weights(int type, const char *grp, int k) {
    switch (type) {
    case ILM_TYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(grp + (size_t)k * 2 * ROWS)));
    case ILM_TYPE_BF16: {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(grp + (size_t)k * 2 * ROWS)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    default:
        return _mm256_loadu_ps((const float *)(grp + (size_t)k * 4 * ROWS));
    }
}

// ng groups (of 8 rows) x nc columns; per lane a sequential fma chain over k, as in scalar.
ALWAYS_INLINE void f32_float_tile(int type, const char *const *grp, int ng, int K, const float *x,
                                  int nc, __m256 (*acc)[ILM_TILE_COLS]) {
    for (int k = 0; k < K; k++) {
        __m256 wv[2];
        for (int i = 0; i < ng; i++) wv[i] = float_weights(type, grp[i], k);
        for (int t = 0; t < nc; t++) {
            const __m256 xv = _mm256_broadcast_ss(x + (size_t)t * K + k);
            for (int i = 0; i < ng; i++) acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
        }
    }
}

// Quantized weights dequantized exactly ((q-8)·d, q·d) in the lanes, then the same chain.
ALWAYS_INLINE void f32_quant_tile(int type, const char *const *grp, int ng, int K, const float *x,
                                  int nc, __m256 (*acc)[ILM_TILE_COLS]) {
    const int nb = K / ILM_QK;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    for (int b = 0; b < nb; b++) {
        __m256 dw[2];
        for (int i = 0; i < ng; i++)
            dw[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS)));
        const float *xb = x + (size_t)b * ILM_QK;
        if (type == ILM_TYPE_Q4_0) {
            for (int half = 0; half < 2; half++) {          // low nibbles: 0..15, high: 16..31
                for (int c = 0; c < 4; c++) {
                    __m256i v[2];
                    for (int i = 0; i < ng; i++) v[i] = _mm256_loadu_si256((const __m256i *)(grp[i] + b * qb) + c);
                    for (int e = 0; e < 4; e++) {
                        const int j = 16 * half + 4 * c + e;
                        __m256 wv[2];
                        for (int i = 0; i < ng; i++) {
                            const __m256i q = _mm256_and_si256(_mm256_srli_epi32(v[i], 8 * e + 4 * half), _mm256_set1_epi32(15));
                            wv[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(8))), dw[i]);
                        }
                        for (int t = 0; t < nc; t++) {
                            const __m256 xv = _mm256_broadcast_ss(xb + (size_t)t * K + j);
                            for (int i = 0; i < ng; i++) acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
                        }
                    }
                }
            }
        } else {
            for (int c = 0; c < 8; c++) {
                __m256i v[2];
                for (int i = 0; i < ng; i++) v[i] = _mm256_loadu_si256((const __m256i *)(grp[i] + b * qb) + c);
                for (int e = 0; e < 4; e++) {
                    const int j = 4 * c + e;
                    __m256 wv[2];
                    for (int i = 0; i < ng; i++) {
                        const __m256i q = _mm256_srai_epi32(_mm256_slli_epi32(v[i], 24 - 8 * e), 24);
                        wv[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(q), dw[i]);
                    }
                    for (int t = 0; t < nc; t++) {
                        const __m256 xv = _mm256_broadcast_ss(xb + (size_t)t * K + j);
                        for (int i = 0; i < ng; i++) acc[i][t] = _mm256_fmadd_ps(wv[i], xv, acc[i][t]);
                    }
                }
            }
        }
    }
}

// One tile of a constant type: ng groups of 8 rows x nc columns. Two groups give 2·nc
// independent fma chains to hide the fma latency.
ALWAYS_INLINE void f32_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    __m256 acc[2][ILM_TILE_COLS];
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++) acc[i][t] = _mm256_setzero_ps();
    if (type == ILM_TYPE_Q4_0 || type == ILM_TYPE_Q8_0) f32_quant_tile(type, grp, ng, tl->K, tl->x, nc, acc);
    else f32_float_tile(type, grp, ng, tl->K, tl->x, nc, acc);
    store_tile(tl, ng, nc, acc);
}

ALWAYS_INLINE void mm_f32_tile(const ilm_tile *tl, int ng, int nc) {
    switch (tl->type) { ILM_TILE_TYPE_CASES(f32_tile, tl, ng, nc) default: break; }
}
ILM_TILES_2x4(mm_f32_tiles, mm_f32_tile)

static void avx2_mm_f32(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y, int ldy) {
    ilm_tile_drive(mm_f32_tiles, ROWS, ILM_TILE_GROUPS(mm_f32_tiles), w, r0, r1, x, (size_t)w->cols * sizeof *x,
                   n, y, ldy);
}

// ---- Q4_0/Q8_0 weights x f32 activations, per block (mm_fa) --------------------------------

// Per (row, column) and block: element j = 16h + 4c + e (Q4_0: h 0..1, c 0..3; Q8_0: h 0,
// c 0..7); one product chain over c per (h, e) — independent chains, so one column is not
// bound by the FMA latency —, the chains added in (h, e) order into s_b, then
// acc = fma(d_b, s_b, acc). The sequence does not depend on the tile: batched = single.
ALWAYS_INLINE void fa_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[1] = {tl->grp};
    const int K = tl->K, nb = K / ILM_QK;
    const float *x = tl->x;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    const int nparts = type == ILM_TYPE_Q4_0 ? 8 : 4, nchunks = type == ILM_TYPE_Q4_0 ? 4 : 8;
    (void)ng;  // one group per tile: 3 x 4 accumulators + weights fill the 16 registers
    __m256 acc[ILM_TILE_COLS];
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256 s[ILM_TILE_COLS];
        const float *xb = x + (size_t)b * ILM_QK;
        prefetch_ahead(grp[0] + (size_t)b * qb, (int)qb);
#pragma GCC unroll 8
        for (int p = 0; p < nparts; p++) {
            const int h = p / 4, e = p % 4;
            __m256 part[ILM_TILE_COLS];
#pragma GCC unroll 8
            for (int c = 0; c < nchunks; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(grp[0] + (size_t)b * qb) + c);
                __m256i q;
                if (type == ILM_TYPE_Q4_0)
                    q = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(v, 8 * e + 4 * h), _mm256_set1_epi32(15)),
                                         _mm256_set1_epi32(8));
                else
                    q = _mm256_srai_epi32(e == 3 ? v : _mm256_slli_epi32(v, 24 - 8 * e), 24);
                const __m256 w = _mm256_cvtepi32_ps(q);
#pragma GCC unroll 4
                for (int t = 0; t < nc; t++) {
                    const __m256 xv = _mm256_broadcast_ss(xb + (size_t)t * K + 16 * h + 4 * c + e);
                    part[t] = c ? _mm256_fmadd_ps(w, xv, part[t]) : _mm256_mul_ps(w, xv);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) s[t] = p ? _mm256_add_ps(s[t], part[t]) : part[t];
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(pk_scales(grp[0], type, K, ROWS) + (size_t)b * ROWS)));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) acc[t] = _mm256_fmadd_ps(dw, s[t], acc[t]);
    }
    store_tile(tl, 1, nc, (__m256(*)[ILM_TILE_COLS])acc);
}

ALWAYS_INLINE void mm_fa_tile(const ilm_tile *tl, int ng, int nc) {
    if (tl->type == ILM_TYPE_Q4_0) fa_tile(ILM_TYPE_Q4_0, tl, ng, nc);
    else fa_tile(ILM_TYPE_Q8_0, tl, ng, nc);
}
ILM_TILES_1x4(mm_fa_tiles, mm_fa_tile)

static void avx2_mm_fa(const ilm_matrix *w, int r0, int r1, const void *x, int n, float *y, int ldy) {
    ilm_tile_drive(mm_fa_tiles, ROWS, ILM_TILE_GROUPS(mm_fa_tiles), w, r0, r1, x, (size_t)w->cols * sizeof(float), n,
                   y, ldy);
}

// ---- activation quantization --------------------------------------------------------------

// Same arithmetic as the scalar reference: x*id rounded by vcvtps2dq (round-half-even).
// Per block of 32: d = fp16(amax / 127) (F16C, round to nearest even as ilm_f32_to_f16), q =
// round(x · 127/amax), sum = Σq. Named vectors, not arrays: gcc -O2 copied an array of four
// through the stack in 16-byte pieces and read it back in 32 (a store-forwarding stall per
// block); with that, the software fp16 round trip and an int32 sum tree it cost 4.5x (0.89 ->
// 0.20 ns per element, Zen 5; 5% of an E2B prefill). The same bits as before.
void ilm_avx2_quantize_q8a(const float *x, int K, ilm_q8a *out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < K / ILM_QK; b++) {
        const float *xb = x + b * ILM_QK;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        const __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                       _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = ilm_hmax256(m);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        out[b].d = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
        const __m256 idv = _mm256_set1_ps(id);
        // int32 -> int16 -> int8: values within ±127, so the saturating packs are exact
        const __m256i h0 = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v0, idv)), _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv)));
        const __m256i h1 = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v2, idv)), _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv)));
        out[b].sum = ilm_hsum256_epi32(_mm256_madd_epi16(_mm256_add_epi16(h0, h1), _mm256_set1_epi16(1)));
        // the packs interleave 128-bit lanes: put the 8 dwords back in element order
        _mm256_storeu_si256((__m256i *)out[b].qs, _mm256_permutevar8x32_epi32(_mm256_packs_epi16(h0, h1), order));
    }
}

// ---- attention ----------------------------------------------------------------------------

ALWAYS_INLINE __m256 kv_load8(const void *row, int kv_type, int d) {
    return kv_type == ILM_TYPE_F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + d)))
                                   : _mm256_loadu_ps((const float *)row + d);
}

ALWAYS_INLINE float kv_elem(const void *row, int kv_type, int d) {
    return kv_type == ILM_TYPE_F16 ? ilm_f16_to_f32(((const uint16_t *)row)[d]) : ((const float *)row)[d];
}

// R rows of keys at once (R independent sums keep both fma pipes busy); each row gets the same
// operations whatever R is, so a score does not depend on how the rows were grouped.
ALWAYS_INLINE void scores_rows(const float *q, const void *k, int kv_type, size_t stride, int hd, int R,
                               float *scores) {
    __m256 s0[4], s1[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) s0[r] = s1[r] = _mm256_setzero_ps();
    int d = 0;
    for (; d + 16 <= hd; d += 16) {
        const __m256 q0 = _mm256_loadu_ps(q + d), q1 = _mm256_loadu_ps(q + d + 8);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const void *kr = (const char *)k + (size_t)r * stride;
            s0[r] = _mm256_fmadd_ps(q0, kv_load8(kr, kv_type, d), s0[r]);
            s1[r] = _mm256_fmadd_ps(q1, kv_load8(kr, kv_type, d + 8), s1[r]);
        }
    }
    const int d8 = d;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const void *kr = (const char *)k + (size_t)r * stride;
        for (d = d8; d + 8 <= hd; d += 8) s0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), kv_load8(kr, kv_type, d), s0[r]);
        float sum = ilm_hsum256(_mm256_add_ps(s0[r], s1[r]));
        for (; d < hd; d++) sum = fmaf(q[d], kv_elem(kr, kv_type, d), sum);
        scores[r] = sum;
    }
}

void ilm_avx2_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
                          float *scores) {
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const void *kj = (const char *)k + (size_t)j * stride;
        if (kv_type == ILM_TYPE_F16) scores_rows(q, kj, ILM_TYPE_F16, stride, hd, 4, scores + j);
        else scores_rows(q, kj, ILM_TYPE_F32, stride, hd, 4, scores + j);
    }
    for (; j < n; j++) {
        const void *kj = (const char *)k + (size_t)j * stride;
        if (kv_type == ILM_TYPE_F16) scores_rows(q, kj, ILM_TYPE_F16, stride, hd, 1, scores + j);
        else scores_rows(q, kj, ILM_TYPE_F32, stride, hd, 1, scores + j);
    }
}

// out[0 .. 8·nv) over all n rows. Lanes over d, j in order: the same fma chain per element
// as scalar (bit-identical); nv = 8 vectors give 8 independent chains to hide fma latency.
ALWAYS_INLINE void values_tile(const float *p, const void *v, int kv_type, size_t stride, int n, int nv,
                               float *out) {
    __m256 o[8];
#pragma GCC unroll 8
    for (int i = 0; i < nv; i++) o[i] = _mm256_loadu_ps(out + 8 * i);
    for (int j = 0; j < n; j++) {
        const void *vj = (const char *)v + (size_t)j * stride;
        const __m256 pj = _mm256_set1_ps(p[j]);
#pragma GCC unroll 8
        for (int i = 0; i < nv; i++) o[i] = _mm256_fmadd_ps(pj, kv_load8(vj, kv_type, 8 * i), o[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < nv; i++) _mm256_storeu_ps(out + 8 * i, o[i]);
}

void ilm_avx2_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                          float *out) {
    const size_t es = kv_type == ILM_TYPE_F16 ? 2 : 4;
    int d = 0;
    while (hd - d >= 8) {
        const int nv = (hd - d) / 8 < 8 ? (hd - d) / 8 : 8;
        const void *vd = (const char *)v + (size_t)d * es;
#define CASE(N)                                                                                  \
    case N:                                                                                      \
        if (kv_type == ILM_TYPE_F16) values_tile(p, vd, ILM_TYPE_F16, stride, n, N, out + d);     \
        else values_tile(p, vd, ILM_TYPE_F32, stride, n, N, out + d);                            \
        break;
        switch (nv) { CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) }
#undef CASE
        d += 8 * nv;
    }
    for (; d < hd; d++)
        for (int j = 0; j < n; j++) out[d] = fmaf(p[j], kv_elem((const char *)v + (size_t)j * stride, kv_type, d), out[d]);
}

// ---- elementwise / reductions -------------------------------------------------------------

// Sum of squares in double, like the reference, so only the summation order differs.
void ilm_avx2_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double ss = (t[0] + t[1]) + (t[2] + t[3]);
    for (int k = i; k < n; k++) ss += (double)x[k] * x[k];
    const float scale = (float)(1.0 / sqrt(ss / n + eps));
    const __m256 sv = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void ilm_avx2_rope_neox(float *x, int n_dims, const float *cs) {
    const int half = n_dims / 2;
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 c01 = _mm256_loadu_ps(cs + 2 * i), c23 = _mm256_loadu_ps(cs + 2 * i + 8);
        // de-interleave (cos, sin) pairs; shuffle_ps works per 128-bit lane, permute fixes the order
        const __m256 c = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(c01, c23, 0x88)), 0xD8));
        const __m256 s = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(c01, c23, 0xDD)), 0xD8));
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
        _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(x + i + half, _mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)));
    }
    for (; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1], a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

void ilm_avx2_softmax(float *x, int n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float mx = ilm_hmax256(mv);
    for (int k = i; k < n; k++) mx = fmaxf(mx, x[k]);
    const __m256 mxv = _mm256_set1_ps(mx);
    __m256 sv = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = ilm_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mxv));
        _mm256_storeu_ps(x + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    double sum = ilm_hsum256(sv);
    for (; i < n; i++) {
        float t[8] = {x[i] - mx};
        _mm256_storeu_ps(t, ilm_exp256(_mm256_loadu_ps(t)));
        x[i] = t[0];
        sum += x[i];
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= (float)(1.0 / sum);
}

// 0.5·g·(1 + tanh(u)) == g / (1 + exp(-2u)): the same function without the cancellation
// of 1 + tanh(u) near -1, so it is at least as accurate as the reference formula.
ALWAYS_INLINE __m256 geglu8(__m256 g, __m256 up) {
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608f),
                                   _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), g), _mm256_mul_ps(g, g), g));
    const __m256 e = ilm_exp256(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), up);
}

void ilm_avx2_geglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, geglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {  // tail through the same vector code, so every element sees one formula
        float g[8] = {0}, u[8] = {0}, o[8];
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(o, geglu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(out + i, o, (size_t)(n - i) * sizeof(float));
    }
}

void ilm_avx2_softcap(float *x, int n, float cap) {
    const __m256 c = _mm256_set1_ps(cap), ic = _mm256_set1_ps(1.0f / cap);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(c, ilm_tanh256(_mm256_mul_ps(_mm256_loadu_ps(x + i), ic))));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(t, _mm256_mul_ps(c, ilm_tanh256(_mm256_mul_ps(_mm256_loadu_ps(t), ic))));
        memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
    }
}

// ---- conversions --------------------------------------------------------------------------

void ilm_avx2_f32_to_f16(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ilm_f32_to_f16(x[i]);
}

void ilm_avx2_f16_to_f32(const uint16_t *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = ilm_f16_to_f32(x[i]);
}

// q·d per element as the scalar reference computes it (int -> float, one multiply): exact.
void ilm_avx2_dequant_row(int type, const void *src, float *y, int K) {
    if (type == ILM_TYPE_F16) {
        ilm_avx2_f16_to_f32(src, y, K);
        return;
    }
    if (type != ILM_TYPE_Q4_0 && type != ILM_TYPE_Q8_0) {
        ilm_scalar_dequant_row(type, src, y, K);
        return;
    }
    for (int b = 0; b < K / ILM_QK; b++) {
        float *yb = y + (size_t)b * ILM_QK;
        if (type == ILM_TYPE_Q4_0) {
            const ilm_block_q4_0 *blk = (const ilm_block_q4_0 *)src + b;
            const __m256 d = _mm256_set1_ps(ilm_f16_to_f32(blk->d));
            const __m128i q = _mm_loadu_si128((const __m128i *)blk->qs), eight = _mm_set1_epi8(8);
            const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0F)), eight);  // elements 0..15
            const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)), eight);
            const __m128i half[2] = {lo, hi};
            for (int h = 0; h < 2; h++) {
                _mm256_storeu_ps(yb + 16 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(half[h])), d));
                _mm256_storeu_ps(yb + 16 * h + 8,
                                 _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(half[h], 8))), d));
            }
        } else {
            const ilm_block_q8_0 *blk = (const ilm_block_q8_0 *)src + b;
            const __m256 d = _mm256_set1_ps(ilm_f16_to_f32(blk->d));
            for (int j = 0; j < 32; j += 8) {
                __m128i q;
                memcpy(&q, blk->qs + j, 8);  // 8 bytes into the low half
                _mm256_storeu_ps(yb + j, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
            }
        }
    }
}

// ---- machine probes ---------------------------------------------------------------------

static uint64_t avx2_read_sum(const void *p, size_t bytes, size_t prefetch) {
    const char *c = p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes; i += 128) {
        if (prefetch) _mm_prefetch(c + i + prefetch, _MM_HINT_T0), _mm_prefetch(c + i + prefetch + 64, _MM_HINT_T0);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(c + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(c + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(c + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(c + i + 96)));
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    return t[0] + t[1] + t[2] + t[3];
}

// The mm_q8 dot (VPMADDUBSW + VPMADDWD + VPADDD), 8 independent accumulators.
static double avx2_int8_dot_loop(long iters) {
    __m256i acc[8], a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2);
    for (int k = 0; k < 8; k++) acc[k] = _mm256_set1_epi32(k);
    for (long i = 0; i < iters; i++) {
        __asm__ volatile("" : "+x"(a), "+x"(b));
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
    }
    __m256i s = acc[0];
    for (int k = 1; k < 8; k++) s = _mm256_add_epi32(s, acc[k]);
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, s);
    volatile int32_t sink = t[0] + t[7];
    (void)sink;
    return (double)iters * 8 * 32;
}

const ilm_kernels ilm_kernels_avx2 = {
    .name = "avx2",
    .interleave = ROWS,
    .packed_size = avx2_packed_size,
    .pack = avx2_pack,
    .mm_q8 = avx2_mm_q8,
    .mm_f32 = avx2_mm_f32,
    .mm_fa = avx2_mm_fa,
    .quantize_q8a = ilm_avx2_quantize_q8a,
    .attn_scores = ilm_avx2_attn_scores,
    .attn_values = ilm_avx2_attn_values,
    .rmsnorm = ilm_avx2_rmsnorm,
    .rope_neox = ilm_avx2_rope_neox,
    .softmax = ilm_avx2_softmax,
    .geglu = ilm_avx2_geglu,
    .softcap = ilm_avx2_softcap,
    .f32_to_f16 = ilm_avx2_f32_to_f16,
    .f16_to_f32 = ilm_avx2_f16_to_f32,
    .dequant_row = ilm_avx2_dequant_row,
    .read_sum = avx2_read_sum,
    .int8_dot_loop = avx2_int8_dot_loop,
};
