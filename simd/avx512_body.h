// avx512_body.h — the AVX-512 matrix kernels, shared by simd/avx512.c, avx512vnni.c, avx512bf16.c.
// Length: one body for three sets (VNNI and BF16 switched by macros); its kernels share the
// tile helpers (store_tile, prefetch_block, FOR_TILE) and end in the one table.
//
// The including file defines AVX512_VNNI (0 or 1), AVX512_BF16 (0 or 1: simd/avx512bf16.c),
// AVX512_SET (the table's symbol) and AVX512_NAME. Layout: simd/pack.h with 16 rows per group (one __m512 of f32 = 16 output
// rows); lanes run the scalar reference's exact sequence, so results are bit-identical.
//  * VNNI: VPDPBUSD (u8 x s8, 4 products per int32 lane, no saturation). Q8_0 weights are
//    packed as q + 128 (unsigned) and corrected by -128·Σa; Q4_0 nibbles are already
//    unsigned and are corrected by -8·Σa.
//  * plain AVX-512 (Skylake-SP): vpmaddubsw + vpmaddwd; for Q8_0 |w| (unsigned) times a with
//    w's sign applied through a mask (AVX-512 has no vpsignb).
//  * mm_fa (Q4_0/Q8_0 x float activations, per-block, `--act bf16`): with AVX512_BF16,
//    VDPBF16PS on bf16 activations (ilm_bf16a) and weights expanded to bf16 in two ops per
//    vector (shift, ternlog: nibble | 0x4300 = the exact bf16 of 128 + nibble; the offset is
//    taken back per block through the activation block's sum); without, the nibbles become
//    floats through a 16-entry VPERMPS table, f32 FMAs on f32 activations.
// mm_q8 / mm_f32 / mm_fa are the tile driver of simd/tile.h over the tables mm_q8_tiles and
// mm_f32_tiles (1..2 groups x 1..4 columns each).
// Attention: 512-bit here (masked tails). Activation quantization, elementwise ops: the AVX2
// versions (simd/avx2.h).
#include <immintrin.h>
#include <string.h>

#include "avx2.h"
#include "kernels.h"
#include "pack.h"
#include "scalar.h"
#include "tile.h"

#ifndef AVX512_BF16
#define AVX512_BF16 0
#endif

#define ROWS 16
#define PREFETCH_BLOCKS 32  // quant blocks ahead in each group's stream
#define ALWAYS_INLINE static inline __attribute__((always_inline))

static size_t avx512_packed_size(int type, int rows, int K) { return pk_packed_size(type, rows, K, ROWS); }

static void avx512_pack(int type, const void *src, int rows, int K, void *dst, int r0, int r1) {
    pk_pack(type, src, rows, K, dst, r0, r1, ROWS, AVX512_VNNI);
}

ALWAYS_INLINE void store_rows(float *y, __m512 v, int valid) {
    if (valid >= ROWS) _mm512_storeu_ps(y, v);
    else _mm512_mask_storeu_ps(y, (__mmask16)((1u << valid) - 1), v);
}

// Writes a tile's acc[i][t] (group i, column t) to its place in y.
ALWAYS_INLINE void store_tile(const ilm_tile *tl, int ng, int nc, __m512 (*acc)[ILM_TILE_COLS]) {
    for (int i = 0; i < ng; i++)
        for (int t = 0; t < nc; t++) store_rows(tl->y + (size_t)t * tl->ldy + i * ROWS, acc[i][t], tl->valid - i * ROWS);
}

ALWAYS_INLINE __m512i bcast4(const int8_t *p) {
    int32_t t;
    memcpy(&t, p, 4);
    return _mm512_set1_epi32(t);
}

ALWAYS_INLINE __m512 load_scales(const uint16_t *s) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s));
}

// ---- quantized weights x Q8 activations ---------------------------------------------------

// A tile is ng (1 or 2) groups of 16 rows x nc (<= ILM_TILE_COLS) columns: each weight vector feeds
// nc columns and each activation broadcast feeds ng groups, so a tile of 2 x 4 needs 0.75
// loads per int8 dot instead of 1.125 for 1 x 8 (loads, not dots, bound the 1 x 8 tile on
// Zen 5). The group and column loops are unrolled by force: rolled, the per-column sums
// live on the stack (5x slower). Per (row, column) the block order is the scalar one.
// Chunk loops that must stay rolled (see each use); clang would unroll them on its own.
#ifdef __clang__
#define CHUNKS_ROLLED _Pragma("clang loop unroll(disable)")
#define CHUNKS_UNROLLED_GCC CHUNKS_ROLLED  // clang spills the unrolled Q4_0 tile (2x slower)
#else
#define CHUNKS_ROLLED _Pragma("GCC unroll 1")
#define CHUNKS_UNROLLED_GCC _Pragma("GCC unroll 4")
#endif
#if AVX512_VNNI
#define Q8_CHUNKS_UNROLLED _Pragma("GCC unroll 4")
#else
#define Q8_CHUNKS_UNROLLED _Pragma("GCC unroll 8")
#endif
#define FOR_TILE(i, t) _Pragma("GCC unroll 2") for (int i = 0; i < ng; i++) _Pragma("GCC unroll 4") for (int t = 0; t < nc; t++)

// One quant block of each group, PREFETCH_BLOCKS blocks ahead (the stream runs on into the
// next groups). The out-of-order window alone keeps too few lines in flight once the dots
// per byte grow (Zen 5, 2 threads, 80 MB: 8 blocks ahead -> 32, Q8_0 n = 3 / 4 1.11 / 1.20
// -> 0.94 / 0.85 ms, Q4_0 -8..-10% at every n). Q8_0 with one column streams fine without
// (with it: +15%).
ALWAYS_INLINE void prefetch_block(const char *const *grp, int ng, size_t off, int bytes) {
    off += (size_t)PREFETCH_BLOCKS * bytes;
#pragma GCC unroll 2
    for (int i = 0; i < ng; i++)
#pragma GCC unroll 8
        for (int l = 0; l < bytes; l += 64) _mm_prefetch(grp[i] + off + l, _MM_HINT_T0);
}

// One 4-byte chunk c (elements 4c..4c+3 of every row) of block b into the tile's int sums.
ALWAYS_INLINE void q8_0_chunk(const char *const *grp, int ng, int nb, const ilm_q8a *x, int nc, int b, int c,
                              __m512i (*isum)[ILM_TILE_COLS]) {
    __m512i w[2];
#pragma GCC unroll 2
    for (int i = 0; i < ng; i++) w[i] = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * 32 * ROWS) + c);
#if AVX512_VNNI
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++) {
        const __m512i a = bcast4(x[(size_t)t * nb + b].qs + 4 * c);
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) isum[i][t] = _mm512_dpbusd_epi32(isum[i][t], w[i], a);
    }
#else
    __m512i aw[2];
    __mmask64 neg[2];
#pragma GCC unroll 2
    for (int i = 0; i < ng; i++) aw[i] = _mm512_abs_epi8(w[i]), neg[i] = _mm512_movepi8_mask(w[i]);
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++) {
        const __m512i a = bcast4(x[(size_t)t * nb + b].qs + 4 * c);
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) {
            const __m512i sa = _mm512_mask_sub_epi8(a, neg[i], _mm512_setzero_si512(), a);
            const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(aw[i], sa), _mm512_set1_epi16(1));
            isum[i][t] = _mm512_add_epi32(isum[i][t], p);
        }
    }
#endif
}

ALWAYS_INLINE void q8_0_tile(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, int nc, __m512 (*acc)[ILM_TILE_COLS]) {
    FOR_TILE(i, t) acc[i][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512i isum[2][ILM_TILE_COLS];
        // VNNI: weights were packed as q+128, so start from -128·Σa and end at Σq·a
        FOR_TILE(i, t) isum[i][t] = AVX512_VNNI ? _mm512_set1_epi32(-128 * x[(size_t)t * nb + b].sum) : _mm512_setzero_si512();
        // Chunks unrolled (Zen 5, 2 threads, 80 MB of 2560 x 640 Q8_0): rolled, one column
        // ran 1.6x slower. Several columns: by 4 with VNNI (by 8: n = 4 1.4x slower), by 8
        // without (by 4: n = 3, 4 1.3-1.7x slower).
        if (nc == 1) {
            // One column: two dot chains per group (even and odd chunks), else the VPDPBUSD
            // latency bounds the loop. Integer sums, so the split changes no result.
            __m512i odd[2][ILM_TILE_COLS];
#pragma GCC unroll 2
            for (int i = 0; i < ng; i++) odd[i][0] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 0; c < 8; c += 2) {
                q8_0_chunk(grp, ng, nb, x, nc, b, c, isum);
                q8_0_chunk(grp, ng, nb, x, nc, b, c + 1, odd);
            }
#pragma GCC unroll 2
            for (int i = 0; i < ng; i++) isum[i][0] = _mm512_add_epi32(isum[i][0], odd[i][0]);
        } else {
            prefetch_block(grp, ng, (size_t)b * 32 * ROWS, 32 * ROWS);
            Q8_CHUNKS_UNROLLED
            for (int c = 0; c < 8; c++) q8_0_chunk(grp, ng, nb, x, nc, b, c, isum);
        }
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) {
            const __m512 dw = load_scales(scales[i] + (size_t)b * ROWS);
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(x[(size_t)t * nb + b].d));  // exact: fp16 x fp16
                acc[i][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum[i][t]), acc[i][t]);
            }
        }
    }
}

ALWAYS_INLINE void q4_0_tile(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, int nc, __m512 (*acc)[ILM_TILE_COLS]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    FOR_TILE(i, t) acc[i][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        // VNNI: int32 sums from -8·Σa, ending at Σ(q-8)·a; otherwise int16 (8 x |2·15·127| < 32767)
        __m512i sum[2][ILM_TILE_COLS];
        prefetch_block(grp, ng, (size_t)b * 16 * ROWS, 16 * ROWS);
        FOR_TILE(i, t) sum[i][t] = AVX512_VNNI ? _mm512_set1_epi32(-8 * x[(size_t)t * nb + b].sum) : _mm512_setzero_si512();
        CHUNKS_UNROLLED_GCC
        for (int c = 0; c < 4; c++) {  // unrolled (gcc): +5-10% at every n
            __m512i lo[2], hi[2];
#pragma GCC unroll 2
            for (int i = 0; i < ng; i++) {
                const __m512i v = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * 16 * ROWS) + c);
                lo[i] = _mm512_and_si512(v, low4);                        // elements 4c..4c+3
                hi[i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);  // elements 16+4c..
            }
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const ilm_q8a *a = &x[(size_t)t * nb + b];
                const __m512i alo = bcast4(a->qs + 4 * c), ahi = bcast4(a->qs + 16 + 4 * c);
#pragma GCC unroll 2
                for (int i = 0; i < ng; i++) {
#if AVX512_VNNI
                    sum[i][t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum[i][t], lo[i], alo), hi[i], ahi);
#else
                    const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(lo[i], alo), _mm512_maddubs_epi16(hi[i], ahi));
                    sum[i][t] = _mm512_add_epi16(sum[i][t], p);
#endif
                }
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) {
            const __m512 dw = load_scales(scales[i] + (size_t)b * ROWS);
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const ilm_q8a *a = &x[(size_t)t * nb + b];
#if AVX512_VNNI
                const __m512i isum = sum[i][t];
#else
                const __m512i isum = _mm512_sub_epi32(_mm512_madd_epi16(sum[i][t], _mm512_set1_epi16(1)),
                                                      _mm512_set1_epi32(8 * a->sum));  // Σ(q-8)·a
#endif
                const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a->d));
                acc[i][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), acc[i][t]);
            }
        }
    }
}

// One tile: ng groups of 16 rows x nc columns.
ALWAYS_INLINE void mm_q8_tile(const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    const uint16_t *scales[2] = {pk_scales(grp[0], tl->type, tl->K, ROWS), pk_scales(grp[1], tl->type, tl->K, ROWS)};
    __m512 acc[2][ILM_TILE_COLS];
    if (tl->type == ILM_TYPE_Q4_0) q4_0_tile(grp, scales, ng, tl->K / ILM_QK, tl->x, nc, acc);
    else q8_0_tile(grp, scales, ng, tl->K / ILM_QK, tl->x, nc, acc);
    store_tile(tl, ng, nc, acc);
}
ILM_TILES_2x4(mm_q8_tiles, mm_q8_tile)

// ---- one column (decode): up to 4 row groups per tile -------------------------------------
// Each activation broadcast feeds 4 weight streams, and each thread keeps 4 streams of lines in
// flight (Zen 5, 2 threads, 1 GiB streamed: Q4_0 52 -> 56 GB/s, Q8_0 57 -> 61 GB/s). Per
// (row, block) the integer sums of q4_0_tile / q8_0_tile (exact, any order), the same scale
// step; two sum chains per group against the VPDPBUSD latency (Q4_0: low and high nibbles;
// Q8_0: even and odd chunks). Separate from the 2 x 4 tiles, whose register allocation the
// larger arrays disturbed (prefill -7..-10%).
#define COL1_GROUPS 4

ALWAYS_INLINE void q4_0_col1(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, __m512 *acc) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 4
    for (int i = 0; i < ng; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const ilm_q8a *a = &x[b];
        __m512i s0[COL1_GROUPS], s1[COL1_GROUPS];  // s1: VNNI only
        prefetch_block(grp, ng, (size_t)b * 16 * ROWS, 16 * ROWS);
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) s0[i] = AVX512_VNNI ? _mm512_set1_epi32(-8 * a->sum) : _mm512_setzero_si512(), s1[i] = _mm512_setzero_si512();
        (void)s1;
        CHUNKS_UNROLLED_GCC
        for (int c = 0; c < 4; c++) {
            const __m512i alo = bcast4(a->qs + 4 * c), ahi = bcast4(a->qs + 16 + 4 * c);
#pragma GCC unroll 4
            for (int i = 0; i < ng; i++) {
                const __m512i v = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * 16 * ROWS) + c);
                const __m512i lo = _mm512_and_si512(v, low4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
#if AVX512_VNNI
                s0[i] = _mm512_dpbusd_epi32(s0[i], lo, alo), s1[i] = _mm512_dpbusd_epi32(s1[i], hi, ahi);
#else
                s0[i] = _mm512_add_epi16(s0[i], _mm512_add_epi16(_mm512_maddubs_epi16(lo, alo), _mm512_maddubs_epi16(hi, ahi)));
#endif
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) {
#if AVX512_VNNI
            const __m512i isum = _mm512_add_epi32(s0[i], s1[i]);
#else
            const __m512i isum = _mm512_sub_epi32(_mm512_madd_epi16(s0[i], _mm512_set1_epi16(1)), _mm512_set1_epi32(8 * a->sum));
#endif
            const __m512 scale = _mm512_mul_ps(load_scales(scales[i] + (size_t)b * ROWS), _mm512_set1_ps(a->d));
            acc[i] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), acc[i]);
        }
    }
}

// Chunk c of block b of every group into sums s (Q8_0; q8_0_chunk's arithmetic, one column).
ALWAYS_INLINE void q8_0_col1_chunk(const char *const *grp, int ng, const ilm_q8a *a, int b, int c, __m512i *s) {
    const __m512i av = bcast4(a->qs + 4 * c);
#pragma GCC unroll 4
    for (int i = 0; i < ng; i++) {
        const __m512i w = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * 32 * ROWS) + c);
#if AVX512_VNNI
        s[i] = _mm512_dpbusd_epi32(s[i], w, av);
#else
        const __m512i sa = _mm512_mask_sub_epi8(av, _mm512_movepi8_mask(w), _mm512_setzero_si512(), av);
        s[i] = _mm512_add_epi32(s[i], _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), sa), _mm512_set1_epi16(1)));
#endif
    }
}

ALWAYS_INLINE void q8_0_col1(const char *const *grp, const uint16_t *const *scales, int ng, int nb,
                             const ilm_q8a *x, __m512 *acc) {
#pragma GCC unroll 4
    for (int i = 0; i < ng; i++) acc[i] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const ilm_q8a *a = &x[b];
        __m512i s0[COL1_GROUPS], s1[COL1_GROUPS];
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) s0[i] = AVX512_VNNI ? _mm512_set1_epi32(-128 * a->sum) : _mm512_setzero_si512(), s1[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 8; c += 2) q8_0_col1_chunk(grp, ng, a, b, c, s0), q8_0_col1_chunk(grp, ng, a, b, c + 1, s1);
#pragma GCC unroll 4
        for (int i = 0; i < ng; i++) {
            const __m512 scale = _mm512_mul_ps(load_scales(scales[i] + (size_t)b * ROWS), _mm512_set1_ps(a->d));
            acc[i] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_add_epi32(s0[i], s1[i])), acc[i]);
        }
    }
}

ALWAYS_INLINE void mm_q8_col1_tile(const ilm_tile *tl, int ng) {
    const char *grp[COL1_GROUPS];
    const uint16_t *scales[COL1_GROUPS];
    for (int i = 0; i < COL1_GROUPS; i++)
        grp[i] = tl->grp + (size_t)(i < ng ? i : ng - 1) * tl->gbytes, scales[i] = pk_scales(grp[i], tl->type, tl->K, ROWS);
    __m512 acc[COL1_GROUPS][ILM_TILE_COLS], a1[COL1_GROUPS];
    if (tl->type == ILM_TYPE_Q4_0) q4_0_col1(grp, scales, ng, tl->K / ILM_QK, tl->x, a1);
    else q8_0_col1(grp, scales, ng, tl->K / ILM_QK, tl->x, a1);
    for (int i = 0; i < ng; i++) acc[i][0] = a1[i];
    store_tile(tl, ng, 1, acc);
}
static void mm_q8_col1_1(const ilm_tile *t) { mm_q8_col1_tile(t, 1); }
static void mm_q8_col1_2(const ilm_tile *t) { mm_q8_col1_tile(t, 2); }
static void mm_q8_col1_3(const ilm_tile *t) { mm_q8_col1_tile(t, 3); }
static void mm_q8_col1_4(const ilm_tile *t) { mm_q8_col1_tile(t, 4); }
static const ilm_tile_fn mm_q8_col1[COL1_GROUPS][ILM_TILE_COLS] = {{mm_q8_col1_1}, {mm_q8_col1_2}, {mm_q8_col1_3}, {mm_q8_col1_4}};

static void avx512_mm_q8(const ilm_matrix *w, int r0, int r1, const ilm_q8a *x, int n, float *y, int ldy) {
    const size_t col_bytes = (size_t)(w->cols / ILM_QK) * sizeof *x;
    if (n == 1) ilm_tile_drive(mm_q8_col1, ROWS, COL1_GROUPS, w, r0, r1, x, col_bytes, n, y, ldy);
    else ilm_tile_drive(mm_q8_tiles, ROWS, ILM_TILE_GROUPS(mm_q8_tiles), w, r0, r1, x, col_bytes, n, y, ldy);
}

// ---- any weights x f32 activations --------------------------------------------------------

ALWAYS_INLINE __m512 float_weights(int type, const char *grp, int k) {
    switch (type) {
    case ILM_TYPE_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + (size_t)k * 2 * ROWS)));
    case ILM_TYPE_BF16: {
        const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(grp + (size_t)k * 2 * ROWS)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
    }
    default:
        return _mm512_loadu_ps((const float *)(grp + (size_t)k * 4 * ROWS));
    }
}

// Element e (0..3) of each row's 4-byte lane, as the exact f32 weight value (q·d or (q-8)·d).
// Q4_0: (q-8)·d as one FMA q·d + (-8·d), exact because the result is representable.
ALWAYS_INLINE __m512 quant_weights(int type, __m512i v, int shift, __m512 dw) {
    __m512i q;
    if (type == ILM_TYPE_Q4_0) {
        q = _mm512_and_si512(_mm512_srli_epi32(v, shift), _mm512_set1_epi32(15));
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), dw, _mm512_mul_ps(dw, _mm512_set1_ps(-8.0f)));
    } else {
#if AVX512_VNNI
        q = _mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(v, shift), _mm512_set1_epi32(255)), _mm512_set1_epi32(128));
#else
        q = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - shift), 24);
#endif
    }
    return _mm512_mul_ps(_mm512_cvtepi32_ps(q), dw);
}

// One tile of a constant type: ng groups of 16 rows x nc columns, per lane the scalar fma
// chain over k. ng is up to 2, or up to COL1_GROUPS with one column: each lane's chain
// is serial, so one column needs that many rows in flight to cover the FMA latency
// (decode of the exact W4A16 path: 2 groups read Q4_0 at half the bandwidth).
ALWAYS_INLINE void f32_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[COL1_GROUPS];
    for (int i = 0; i < COL1_GROUPS; i++) grp[i] = tl->grp + (size_t)(i < ng ? i : ng - 1) * tl->gbytes;
    const int K = tl->K;
    const float *x = tl->x;
    __m512 acc[COL1_GROUPS][ILM_TILE_COLS];
    _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++)
        _Pragma("GCC unroll 4") for (int t = 0; t < nc; t++) acc[i][t] = _mm512_setzero_ps();
    if (type == ILM_TYPE_F32 || type == ILM_TYPE_F16 || type == ILM_TYPE_BF16) {
        for (int k = 0; k < K; k++) {
            __m512 wv[COL1_GROUPS];
            _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) wv[i] = float_weights(type, grp[i], k);
            _Pragma("GCC unroll 4") for (int t = 0; t < nc; t++) {
                const __m512 xv = _mm512_set1_ps(x[(size_t)t * K + k]);
                _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
            }
        }
        store_tile(tl, ng, nc, acc);
        return;
    }
    // Q4_0: chunk c holds elements 4c.. (low nibbles) and 16+4c.. (high); Q8_0: 4c..
    const int nb = K / ILM_QK, nchunks = type == ILM_TYPE_Q4_0 ? 4 : 8, nhalves = type == ILM_TYPE_Q4_0 ? 2 : 1;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    for (int b = 0; b < nb; b++) {
        __m512 dw[COL1_GROUPS];
        if (ng > 2) prefetch_block(grp, ng, (size_t)b * qb, (int)qb);
        _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) dw[i] = load_scales(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS);
        const float *xb = x + (size_t)b * ILM_QK;
        for (int h = 0; h < nhalves; h++) {
            for (int c = 0; c < nchunks; c++) {
                __m512i v[COL1_GROUPS];
                _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) v[i] = _mm512_loadu_si512((const __m512i *)(grp[i] + b * qb) + c);
                _Pragma("GCC unroll 4") for (int e = 0; e < 4; e++) {
                    const int j = 16 * h + 4 * c + e;
                    __m512 wv[COL1_GROUPS];
                    _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) wv[i] = quant_weights(type, v[i], 8 * e + 4 * h, dw[i]);
                    _Pragma("GCC unroll 4") for (int t = 0; t < nc; t++) {
                        const __m512 xv = _mm512_set1_ps(xb[(size_t)t * K + j]);
                        _Pragma("GCC unroll 4") for (int i = 0; i < ng; i++) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
                    }
                }
            }
        }
    }
    store_tile(tl, ng, nc, acc);
}

ALWAYS_INLINE void mm_f32_tile(const ilm_tile *tl, int ng, int nc) {
    switch (tl->type) { ILM_TILE_TYPE_CASES(f32_tile, tl, ng, nc) default: break; }
}
ILM_TILES_2x4(mm_f32_tiles, mm_f32_tile)
// One column: up to COL1_GROUPS groups per tile (only the first column's entries exist).
static void mm_f32_col1_3(const ilm_tile *t) { mm_f32_tile(t, 3, 1); }
static void mm_f32_col1_4(const ilm_tile *t) { mm_f32_tile(t, 4, 1); }
static const ilm_tile_fn mm_f32_col1[COL1_GROUPS][ILM_TILE_COLS] = {
    {mm_f32_tiles_1x1}, {mm_f32_tiles_2x1}, {mm_f32_col1_3}, {mm_f32_col1_4}};

static void avx512_mm_f32(const ilm_matrix *w, int r0, int r1, const float *x, int n, float *y, int ldy) {
    if (n == 1)
        ilm_tile_drive(mm_f32_col1, ROWS, COL1_GROUPS, w, r0, r1, x, (size_t)w->cols * sizeof *x, n, y, ldy);
    else
        ilm_tile_drive(mm_f32_tiles, ROWS, ILM_TILE_GROUPS(mm_f32_tiles), w, r0, r1, x, (size_t)w->cols * sizeof *x,
                       n, y, ldy);
}

// ---- Q4_0/Q8_0 weights x float activations, per block (mm_fa) ------------------------------
//
// Per (row, column) and block: the block's dot s_b in a fixed sequence (below), then
// acc = fma(d_b, s_b, acc); the sequence does not depend on the tile, so batched = single.

#if AVX512_BF16
// bf16 words 0x4300 | n = 128 + n (n = 0..15, exact) in both halves of every 32-bit lane from
// the nibbles at bits `shift` and 16 + shift: (v >> shift) & 0x000F000F | hi.
ALWAYS_INLINE __m512bh bf_nibbles(__m512i v, int shift, int hi) {
    if (shift) v = _mm512_srli_epi32(v, shift);
    return (__m512bh)_mm512_ternarylogic_epi32(v, _mm512_set1_epi32(0x000F000F), _mm512_set1_epi32(hi * 0x10001), 0xEA);
}

ALWAYS_INLINE __m512bh bcast_pair(const ilm_bf16a *a, int k) { return (__m512bh)_mm512_set1_epi32((int)a->pair[k]); }

// Two VDPBF16PS chains per (group, column): even chunks into A (which starts at the offset
// correction -off·Σx), odd into B; s_b = A + B. Q4_0 lanes hold 128 + q (q = 0..15), so the
// offset is 128 + 8 = 136; Q8_0 lanes (q + 128 = 16h + l, VNNI packing) give 2048 + 16h
// (0x4500 | h) and 128 + l, so 2176 + 128 = 2304. Every product is exact in f32 (8 x 8 bits).
ALWAYS_INLINE void fa_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    const int K = tl->K, nb = K / ILM_QK;
    const ilm_bf16a *x = tl->x;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    const float off = type == ILM_TYPE_Q4_0 ? -136.0f : -2304.0f;
    __m512 acc[2][ILM_TILE_COLS];
    FOR_TILE(i, t) acc[i][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 A[2][ILM_TILE_COLS], B[2][ILM_TILE_COLS];
        prefetch_block(grp, ng, (size_t)b * qb, (int)qb);
        FOR_TILE(i, t) A[i][t] = _mm512_set1_ps(off * x[(size_t)t * nb + b].sum), B[i][t] = _mm512_setzero_ps();
        if (type == ILM_TYPE_Q4_0) {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512bh w[2][4];
#pragma GCC unroll 2
                for (int i = 0; i < ng; i++) {
                    const __m512i v = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * qb) + c);
                    w[i][0] = bf_nibbles(v, 0, 0x4300), w[i][1] = bf_nibbles(v, 8, 0x4300);    // 4c+{0,2}, 4c+{1,3}
                    w[i][2] = bf_nibbles(v, 4, 0x4300), w[i][3] = bf_nibbles(v, 12, 0x4300);   // 16+4c+..
                }
#pragma GCC unroll 4
                for (int t = 0; t < nc; t++) {
                    const ilm_bf16a *a = &x[(size_t)t * nb + b];
                    const __m512bh x0 = bcast_pair(a, 2 * c), x1 = bcast_pair(a, 2 * c + 1);
                    const __m512bh x2 = bcast_pair(a, 2 * c + 8), x3 = bcast_pair(a, 2 * c + 9);
#pragma GCC unroll 2
                    for (int i = 0; i < ng; i++) {
                        __m512 *ch = c & 1 ? &B[i][t] : &A[i][t];
                        *ch = _mm512_dpbf16_ps(*ch, w[i][0], x0);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][1], x1);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][2], x2);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][3], x3);
                    }
                }
            }
        } else {
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) {
                __m512bh w[2][4];
#pragma GCC unroll 2
                for (int i = 0; i < ng; i++) {
                    const __m512i v = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * qb) + c);
                    w[i][0] = bf_nibbles(v, 0, 0x4300), w[i][1] = bf_nibbles(v, 8, 0x4300);    // l of 4c+{0,2}, 4c+{1,3}
                    w[i][2] = bf_nibbles(v, 4, 0x4500), w[i][3] = bf_nibbles(v, 12, 0x4500);   // h of the same
                }
#pragma GCC unroll 4
                for (int t = 0; t < nc; t++) {
                    const ilm_bf16a *a = &x[(size_t)t * nb + b];
                    const __m512bh x0 = bcast_pair(a, 2 * c), x1 = bcast_pair(a, 2 * c + 1);
#pragma GCC unroll 2
                    for (int i = 0; i < ng; i++) {
                        __m512 *ch = c & 1 ? &B[i][t] : &A[i][t];
                        *ch = _mm512_dpbf16_ps(*ch, w[i][0], x0);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][1], x1);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][2], x0);
                        *ch = _mm512_dpbf16_ps(*ch, w[i][3], x1);
                    }
                }
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) {
            const __m512 dw = load_scales(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS);
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) acc[i][t] = _mm512_fmadd_ps(dw, _mm512_add_ps(A[i][t], B[i][t]), acc[i][t]);
        }
    }
    store_tile(tl, ng, nc, acc);
}

// Rounds each 32-block to bf16 (VCVTNE2PS2BF16: nearest even) and puts it in pair order
// (within every 4 elements a b c d -> a c b d); sum: the rounded values added as f32.
static void avx512_round_bf16a(const float *x, int K, ilm_bf16a *out) {
    const __m512i order = _mm512_set_epi16(31, 29, 30, 28, 27, 25, 26, 24, 23, 21, 22, 20, 19, 17, 18, 16,
                                           15, 13, 14, 12, 11, 9, 10, 8, 7, 5, 6, 4, 3, 1, 2, 0);
    for (int b = 0; b < K / ILM_QK; b++) {
        const __m512 lo = _mm512_loadu_ps(x + (size_t)b * ILM_QK), hi = _mm512_loadu_ps(x + (size_t)b * ILM_QK + 16);
        const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // words 0..15: lo, 16..31: hi
        _mm512_storeu_si512(out[b].pair, _mm512_permutexvar_epi16(order, h));
        const __m512 flo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
        const __m512 fhi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
        out[b].sum = _mm512_reduce_add_ps(_mm512_add_ps(flo, fhi));
    }
}
#else
// (q-8) of the nibble at bit `shift` of every lane, as f32: VPERMPS reads only the index's
// low 4 bits, so no mask is needed.
ALWAYS_INLINE __m512 fa_q4(__m512i v, int shift) {
    const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    return _mm512_permutexvar_ps(shift ? _mm512_srli_epi32(v, shift) : v, table);
}

// Signed byte e of every lane as f32 (VNNI packing: the caller flips the offset first).
ALWAYS_INLINE __m512 fa_q8(__m512i v, int e) {
    return _mm512_cvtepi32_ps(_mm512_srai_epi32(e == 3 ? v : _mm512_slli_epi32(v, 24 - 8 * e), 24));
}

// Per (row, column) and block: element j = 16h + 4c + e (Q4_0: h 0..1, c 0..3; Q8_0: h 0,
// c 0..7); one partial product chain over c per (h, e), the partials added in (h, e) order.
// The independent chains hide the FMA latency at one column.
ALWAYS_INLINE void fa_tile(int type, const ilm_tile *tl, int ng, int nc) {
    const char *grp[2] = {tl->grp, tl->grp + (size_t)(ng - 1) * tl->gbytes};
    const int K = tl->K, nb = K / ILM_QK;
    const float *x = tl->x;
    const size_t qb = pk_quant_block_bytes(type, ROWS);
    const int nparts = type == ILM_TYPE_Q4_0 ? 8 : 4, nchunks = type == ILM_TYPE_Q4_0 ? 4 : 8;
    __m512 acc[2][ILM_TILE_COLS];
    FOR_TILE(i, t) acc[i][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 s[2][ILM_TILE_COLS];
        const float *xb = x + (size_t)b * ILM_QK;
        prefetch_block(grp, ng, (size_t)b * qb, (int)qb);
#pragma GCC unroll 8
        for (int p = 0; p < nparts; p++) {
            const int h = p / 4, e = p % 4;
            __m512 part[2][ILM_TILE_COLS];
#pragma GCC unroll 8
            for (int c = 0; c < nchunks; c++) {
                __m512 w[2];
#pragma GCC unroll 2
                for (int i = 0; i < ng; i++) {
                    __m512i v = _mm512_loadu_si512((const __m512i *)(grp[i] + (size_t)b * qb) + c);
                    if (type == ILM_TYPE_Q4_0) w[i] = fa_q4(v, 8 * e + 4 * h);
                    else w[i] = fa_q8(AVX512_VNNI ? _mm512_xor_si512(v, _mm512_set1_epi8(-128)) : v, e);
                }
#pragma GCC unroll 4
                for (int t = 0; t < nc; t++) {
                    const __m512 xv = _mm512_set1_ps(xb[(size_t)t * K + 16 * h + 4 * c + e]);
#pragma GCC unroll 2
                    for (int i = 0; i < ng; i++)
                        part[i][t] = c ? _mm512_fmadd_ps(w[i], xv, part[i][t]) : _mm512_mul_ps(w[i], xv);
                }
            }
            FOR_TILE(i, t) s[i][t] = p ? _mm512_add_ps(s[i][t], part[i][t]) : part[i][t];
        }
#pragma GCC unroll 2
        for (int i = 0; i < ng; i++) {
            const __m512 dw = load_scales(pk_scales(grp[i], type, K, ROWS) + (size_t)b * ROWS);
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) acc[i][t] = _mm512_fmadd_ps(dw, s[i][t], acc[i][t]);
        }
    }
    store_tile(tl, ng, nc, acc);
}
#endif

ALWAYS_INLINE void mm_fa_tile(const ilm_tile *tl, int ng, int nc) {
    if (tl->type == ILM_TYPE_Q4_0) fa_tile(ILM_TYPE_Q4_0, tl, ng, nc);
    else fa_tile(ILM_TYPE_Q8_0, tl, ng, nc);
}
ILM_TILES_2x4(mm_fa_tiles, mm_fa_tile)

static void avx512_mm_fa(const ilm_matrix *w, int r0, int r1, const void *x, int n, float *y, int ldy) {
    const size_t col_bytes = AVX512_BF16 ? (size_t)(w->cols / ILM_QK) * sizeof(ilm_bf16a) : (size_t)w->cols * sizeof(float);
    ilm_tile_drive(mm_fa_tiles, ROWS, ILM_TILE_GROUPS(mm_fa_tiles), w, r0, r1, x, col_bytes, n, y, ldy);
}

// ---- attention ----------------------------------------------------------------------------

// 16 K/V elements from d on (lanes outside m read as 0; masked loads do not fault).
ALWAYS_INLINE __m512 kv_load16(const void *row, int kv_type, int d, __mmask16 m) {
    return kv_type == ILM_TYPE_F16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + d))
                                   : _mm512_maskz_loadu_ps(m, (const float *)row + d);
}

ALWAYS_INLINE __mmask16 lanes_below(int k) { return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1); }

// R rows of keys at once; every row gets the same two-accumulator sum and reduction
// whatever R is, so a score does not depend on how the rows were grouped.
ALWAYS_INLINE void scores_rows(const float *q, const void *k, int kv_type, size_t stride, int hd, int R,
                               float *scores) {
    __m512 s[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) s[r][0] = s[r][1] = _mm512_setzero_ps();
    int d = 0;
    for (; d + 32 <= hd; d += 32) {
        const __m512 q0 = _mm512_loadu_ps(q + d), q1 = _mm512_loadu_ps(q + d + 16);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const void *kr = (const char *)k + (size_t)r * stride;
            s[r][0] = _mm512_fmadd_ps(q0, kv_load16(kr, kv_type, d, 0xFFFF), s[r][0]);
            s[r][1] = _mm512_fmadd_ps(q1, kv_load16(kr, kv_type, d + 16, 0xFFFF), s[r][1]);
        }
    }
    for (; d < hd; d += 16) {  // tail: masked lanes add 0
        const __mmask16 m = lanes_below(hd - d);
        const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            s[r][0] = _mm512_fmadd_ps(qv, kv_load16((const char *)k + (size_t)r * stride, kv_type, d, m), s[r][0]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) scores[r] = _mm512_reduce_add_ps(_mm512_add_ps(s[r][0], s[r][1]));
}

static void avx512_attn_scores(const float *q, const void *k, int kv_type, size_t stride, int n, int hd,
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

// out[d0 .. d0+16·nv) (the last vector masked to `last` lanes) over all n rows: lanes over
// d, j in order, so each element runs the scalar fma chain (bit-identical). nv vectors
// give nv independent fma chains, enough to hide the fma latency from nv = 8 up.
ALWAYS_INLINE void values_tile(const float *p, const void *v, int kv_type, size_t stride, int n, int nv,
                               __mmask16 last, float *out) {
    __m512 o[16];
#pragma GCC unroll 16
    for (int i = 0; i < nv; i++) o[i] = _mm512_maskz_loadu_ps(i == nv - 1 ? last : 0xFFFF, out + 16 * i);
    for (int j = 0; j < n; j++) {
        const void *vj = (const char *)v + (size_t)j * stride;
        const __m512 pj = _mm512_set1_ps(p[j]);
#pragma GCC unroll 16
        for (int i = 0; i < nv; i++)
            o[i] = _mm512_fmadd_ps(pj, kv_load16(vj, kv_type, 16 * i, i == nv - 1 ? last : 0xFFFF), o[i]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < nv; i++) _mm512_mask_storeu_ps(out + 16 * i, i == nv - 1 ? last : 0xFFFF, o[i]);
}

// Tiles of up to 256 elements (16 zmm accumulators): one pass over V for head sizes <= 256.
static void avx512_attn_values(const float *p, const void *v, int kv_type, size_t stride, int n, int hd,
                               float *out) {
    const size_t es = kv_type == ILM_TYPE_F16 ? 2 : 4;
    for (int d = 0; d < hd; d += 256) {
        const int w = hd - d < 256 ? hd - d : 256, nv = (w + 15) / 16;
        const __mmask16 last = lanes_below(w - 16 * (nv - 1));
        const void *vd = (const char *)v + (size_t)d * es;
#define CASE(N)                                                                                        \
    case N:                                                                                            \
        if (kv_type == ILM_TYPE_F16) values_tile(p, vd, ILM_TYPE_F16, stride, n, N, last, out + d);     \
        else values_tile(p, vd, ILM_TYPE_F32, stride, n, N, last, out + d);                            \
        break;
        switch (nv) {
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
            CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14) CASE(15) CASE(16)
        }
#undef CASE
    }
}

// ---- machine probes ---------------------------------------------------------------------

static uint64_t avx512_read_sum(const void *p, size_t bytes, size_t prefetch) {
    const char *c = p;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    if (prefetch) {
        for (size_t i = 0; i < bytes; i += 256) {
            for (int l = 0; l < 256; l += 64) _mm_prefetch(c + i + prefetch + l, _MM_HINT_T0);
            a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(c + i)));
            a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(c + i + 64)));
            a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(c + i + 128)));
            a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(c + i + 192)));
        }
    } else {
        for (size_t i = 0; i < bytes; i += 256) {
            a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(c + i)));
            a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(c + i + 64)));
            a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(c + i + 128)));
            a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(c + i + 192)));
        }
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

// 10 independent accumulators (latency x ports of VPDPBUSD on current cores); the operands
// pass through an empty asm each iteration so nothing is hoisted or folded.
static double avx512_int8_dot_loop(long iters) {
    __m512i acc[10], a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    for (int k = 0; k < 10; k++) acc[k] = _mm512_set1_epi32(k);
    for (long i = 0; i < iters; i++) {
        __asm__ volatile("" : "+v"(a), "+v"(b));
#pragma GCC unroll 10
        for (int k = 0; k < 10; k++) {
#if AVX512_VNNI
            acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
#else
            acc[k] = _mm512_add_epi32(acc[k], _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1)));
#endif
        }
    }
    __m512i s = acc[0];
    for (int k = 1; k < 10; k++) s = _mm512_add_epi32(s, acc[k]);
    volatile int sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return (double)iters * 10 * 64;
}

const ilm_kernels AVX512_SET = {
    .name = AVX512_NAME,
    .interleave = ROWS,
    .packed_size = avx512_packed_size,
    .pack = avx512_pack,
    .mm_q8 = avx512_mm_q8,
    .mm_f32 = avx512_mm_f32,
    .mm_fa = avx512_mm_fa,
    .quantize_q8a = ilm_avx2_quantize_q8a,
#if AVX512_BF16
    .round_bf16a = avx512_round_bf16a,
#endif
    .attn_scores = avx512_attn_scores,
    .attn_values = avx512_attn_values,
    .rmsnorm = ilm_avx2_rmsnorm,
    .rope_neox = ilm_avx2_rope_neox,
    .softmax = ilm_avx2_softmax,
    .geglu = ilm_avx2_geglu,
    .softcap = ilm_avx2_softcap,
    .f32_to_f16 = ilm_avx2_f32_to_f16,
    .f16_to_f32 = ilm_avx2_f16_to_f32,
    .dequant_row = ilm_avx2_dequant_row,
    .read_sum = avx512_read_sum,
    .int8_dot_loop = avx512_int8_dot_loop,
};
