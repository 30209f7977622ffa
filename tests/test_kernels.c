// test_kernels.c — every kernel set this CPU runs, checked against simd/scalar.c.
//
// Matrix products and activation quantization must match the scalar reference bit for
// bit (kernels.h contract), batched columns must equal single-column calls, and results
// must not depend on how rows are split over threads. Elementwise ops are compared with
// the tolerances stated next to each test. Fixed seeds throughout.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "simd/half.h"
#include "simd/kernels.h"

// ---- helpers ----------------------------------------------------------------------------

static const ilm_kernels *scalar_set(void) { return ilm_kernels_get("scalar"); }

// Calls fn(set) for every non-scalar set compiled in and supported here.
#define FOR_EACH_SIMD_SET(set)                                                          \
    for (const char *const *name_ = ilm_kernels_all(); *name_; name_++)                 \
        for (const ilm_kernels *set = ilm_kernels_get(*name_); set && strcmp(*name_, "scalar") != 0; set = NULL)

static int same_bits(const float *a, const float *b, size_t n, size_t *first_bad) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            if (first_bad) *first_bad = i;
            return 0;
        }
    return 1;
}

// A random GGUF-layout matrix (rows x K) of `type`; values in a realistic range.
static void *random_matrix(int type, int rows, int K, uint64_t seed) {
    const size_t rb = ilm_row_bytes(type, K);
    unsigned char *m = malloc(rb * rows + 1);
    uint64_t s = seed;
    for (int r = 0; r < rows; r++) {
        unsigned char *row = m + rb * r;
        switch (type) {
        case ILM_TYPE_F32:
            for (int k = 0; k < K; k++) ((float *)row)[k] = t_rand_f32(&s);
            break;
        case ILM_TYPE_F16:
            for (int k = 0; k < K; k++) ((uint16_t *)row)[k] = ilm_f32_to_f16(t_rand_f32(&s));
            break;
        case ILM_TYPE_BF16:
            for (int k = 0; k < K; k++) ((uint16_t *)row)[k] = ilm_f32_to_bf16(t_rand_f32(&s));
            break;
        case ILM_TYPE_Q4_0:
            for (int b = 0; b < K / 32; b++) {
                ilm_block_q4_0 *blk = (ilm_block_q4_0 *)row + b;
                blk->d = ilm_f32_to_f16(0.001f + 0.02f * fabsf(t_rand_f32(&s)));
                for (int j = 0; j < 16; j++) blk->qs[j] = (uint8_t)(t_rand_u64(&s) & 0xFF);
            }
            break;
        case ILM_TYPE_Q8_0:
            for (int b = 0; b < K / 32; b++) {
                ilm_block_q8_0 *blk = (ilm_block_q8_0 *)row + b;
                blk->d = ilm_f32_to_f16(0.0001f + 0.002f * fabsf(t_rand_f32(&s)));
                for (int j = 0; j < 32; j++) blk->qs[j] = (int8_t)((int)(t_rand_u64(&s) % 255) - 127);
            }
            break;
        }
    }
    return m;
}

static float *random_floats(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) x[i] = scale * t_rand_f32(&s);
    return x;
}

// The matrix in `set`'s layout; packed in two calls on disjoint row ranges (as two threads
// would). *owned is what to free (NULL when the set reads the GGUF layout directly).
static ilm_matrix pack_for(const ilm_kernels *set, int type, const void *src, int rows, int K, void **owned) {
    ilm_matrix m = {type, rows, K, src};
    *owned = NULL;
    const size_t size = set->packed_size(type, rows, K);
    if (size == 0) return m;
    void *dst = aligned_alloc(64, (size + 63) / 64 * 64);
    memset(dst, 0xA5, size);  // garbage: pack must write every byte the kernels read
    const int il = set->interleave;
    const int mid = (rows / 2) / il * il;
    set->pack(type, src, rows, K, dst, mid, rows);
    if (mid > 0) set->pack(type, src, rows, K, dst, 0, mid);
    m.data = dst;
    *owned = dst;
    return m;
}

static const int test_K_quant[] = {32, 64, 96, 4096 + 32 * 3};
static const int test_K_float[] = {1, 31, 32, 33, 96, 4096 + 32 * 3};
static const int test_rows[] = {1, 3, 7, 8, 9, 17, 33, 80};  // 80: a one-column tile of 4 groups, then 1
static const int test_n[] = {1, 2, 3, 4, 5, 6, 7, 8, 33};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

// Runs mm (q8 or f32) for set on every size and checks: equal to scalar bit for bit,
// each batched column equal to its single-column call, and a row split at a multiple of
// the interleave gives the same result.
static void check_mm(const ilm_kernels *set, int type, int use_q8) {
    const ilm_kernels *ref = scalar_set();
    const int *Ks = use_q8 || type == ILM_TYPE_Q4_0 || type == ILM_TYPE_Q8_0 ? test_K_quant : test_K_float;
    const int nK = use_q8 || type == ILM_TYPE_Q4_0 || type == ILM_TYPE_Q8_0 ? COUNT(test_K_quant) : COUNT(test_K_float);
    int failures = 0;
    for (int ki = 0; ki < nK; ki++) {
        const int K = Ks[ki];
        for (int ri = 0; ri < COUNT(test_rows); ri++) {
            const int rows = test_rows[ri];
            void *src = random_matrix(type, rows, K, 1000 + 17 * K + rows);
            void *owned;
            const ilm_matrix wref = {type, rows, K, src};
            const ilm_matrix w = pack_for(set, type, src, rows, K, &owned);
            const int nmax = 33;
            float *x = random_floats((size_t)nmax * K, 77 + K, 2.0f);
            ilm_q8a *xq = malloc(sizeof(ilm_q8a) * (size_t)nmax * (K / 32 + 1));
            if (use_q8)
                for (int c = 0; c < nmax; c++) ref->quantize_q8a(x + (size_t)c * K, K, xq + (size_t)c * (K / 32));
            const int ldy = rows + 3;  // ldy > rows: the kernels must not touch the gap
            const size_t ysz = (size_t)ldy * nmax;
            float *y_ref = malloc(ysz * sizeof(float)), *y = malloc(ysz * sizeof(float));
            float *y_one = malloc(ysz * sizeof(float)), *y_split = malloc(ysz * sizeof(float));
            for (int ni = 0; ni < COUNT(test_n); ni++) {
                const int n = test_n[ni];
                for (size_t i = 0; i < ysz; i++) y_ref[i] = y[i] = y_one[i] = y_split[i] = -7.0f;
                if (use_q8) {
                    ref->mm_q8(&wref, 0, rows, xq, n, y_ref, ldy);
                    set->mm_q8(&w, 0, rows, xq, n, y, ldy);
                    for (int c = 0; c < n; c++)
                        set->mm_q8(&w, 0, rows, xq + (size_t)c * (K / 32), 1, y_one + (size_t)c * ldy, ldy);
                } else {
                    ref->mm_f32(&wref, 0, rows, x, n, y_ref, ldy);
                    set->mm_f32(&w, 0, rows, x, n, y, ldy);
                    for (int c = 0; c < n; c++)
                        set->mm_f32(&w, 0, rows, x + (size_t)c * K, 1, y_one + (size_t)c * ldy, ldy);
                }
                // Row split: [0, s) and [s, rows), s a multiple of the interleave.
                const int il = set->interleave, s = ((rows + 1) / 2 + il - 1) / il * il;
                const int split = s < rows ? s : 0;
                if (use_q8) {
                    if (split) set->mm_q8(&w, 0, split, xq, n, y_split, ldy);
                    set->mm_q8(&w, split, rows, xq, n, y_split, ldy);
                } else {
                    if (split) set->mm_f32(&w, 0, split, x, n, y_split, ldy);
                    set->mm_f32(&w, split, rows, x, n, y_split, ldy);
                }
                size_t bad = 0;
                if (failures < 5 && !same_bits(y, y_ref, ysz, &bad)) {
                    failures++;
                    CHECK_MSG(0, "%s %s type %d K=%d rows=%d n=%d: y[%zu] %.9g vs scalar %.9g", set->name,
                              use_q8 ? "mm_q8" : "mm_f32", type, K, rows, n, bad, y[bad], y_ref[bad]);
                }
                if (failures < 5 && !same_bits(y, y_one, ysz, &bad)) {
                    failures++;
                    CHECK_MSG(0, "%s batched != single: type %d K=%d rows=%d n=%d at %zu", set->name, type, K, rows, n, bad);
                }
                if (failures < 5 && !same_bits(y, y_split, ysz, &bad)) {
                    failures++;
                    CHECK_MSG(0, "%s row split changes result: type %d K=%d rows=%d n=%d at %zu", set->name, type, K, rows, n, bad);
                }
            }
            free(y_ref), free(y), free(y_one), free(y_split), free(x), free(xq), free(owned), free(src);
        }
    }
}

// ---- dispatch -----------------------------------------------------------------------------

TEST(kernels_dispatch_lists_and_selects) {
    const char *const *all = ilm_kernels_all();
    CHECK_STR(all[0], "scalar");
    char err[256];
    const ilm_kernels *saved = ilm_k;
    for (const char *const *n = all; *n; n++) {
        const ilm_kernels *set = ilm_kernels_get(*n);
        if (!set) {  // compiled in but this CPU lacks it: select must refuse with a message
            err[0] = 0;
            CHECK(ilm_kernels_select(*n, err, sizeof err) == -1);
            CHECK(strstr(err, *n) != NULL);
            continue;
        }
        CHECK_STR(set->name, *n);
        CHECK(set->interleave >= 1);
        CHECK(ilm_kernels_select(*n, err, sizeof err) == 0);
        CHECK(ilm_k == set);
        // every entry is filled
        CHECK(set->packed_size && set->pack && set->mm_q8 && set->mm_f32 && set->quantize_q8a);
        CHECK(set->attn_scores && set->attn_values && set->rmsnorm && set->rope_neox && set->softmax);
        CHECK(set->geglu && set->softcap && set->f32_to_f16 && set->f16_to_f32 && set->dequant_row);
    }
    CHECK(ilm_kernels_select("sse9", err, sizeof err) == -1);
    CHECK(strstr(err, "sse9") != NULL);
    CHECK(ilm_kernels_get("sse9") == NULL);
    ilm_k = saved;
}

TEST(kernels_dispatch_env_override) {
    const ilm_kernels *saved = ilm_k;
    const char *old = getenv("IRONLM_ISA");
    char *old_copy = old ? strdup(old) : NULL;
    char err[256];
    setenv("IRONLM_ISA", "scalar", 1);
    CHECK(ilm_kernels_init(err, sizeof err) == 0);
    CHECK_STR(ilm_k->name, "scalar");
    setenv("IRONLM_ISA", "bogus", 1);
    err[0] = 0;
    CHECK(ilm_kernels_init(err, sizeof err) == -1);
    CHECK(strstr(err, "IRONLM_ISA") != NULL);
    // A set of the other architecture is never compiled in: refused, not silently ignored.
#if defined(__x86_64__)
    setenv("IRONLM_ISA", "neondot", 1);
#else
    setenv("IRONLM_ISA", "avx512vnni", 1);
#endif
    CHECK(ilm_kernels_init(err, sizeof err) == -1);
    unsetenv("IRONLM_ISA");
    CHECK(ilm_kernels_init(err, sizeof err) == 0);
    CHECK(ilm_kernels_get(ilm_k->name) == ilm_k);
    printf("  kernel sets tested here:");
    for (const char *const *n = ilm_kernels_all(); *n; n++)
        if (ilm_kernels_get(*n)) printf(" %s", *n);
    printf(" (best: %s)\n", ilm_k->name);
    if (old_copy) setenv("IRONLM_ISA", old_copy, 1);
    free(old_copy);
    ilm_k = saved;
}

TEST(kernels_row_bytes) {
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_F32, 10), 40);
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_F16, 10), 20);
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_BF16, 10), 20);
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_Q4_0, 64), 36);
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_Q8_0, 64), 68);
    CHECK_EQ(ilm_row_bytes(ILM_TYPE_Q8_0, 33), 0);
    CHECK_EQ(ilm_row_bytes(99, 32), 0);
    CHECK_EQ(sizeof(ilm_block_q4_0), 18);
    CHECK_EQ(sizeof(ilm_block_q8_0), 34);
    CHECK_EQ(sizeof(ilm_q8a), 40);
}

// ---- the scalar reference against hand-computed values ------------------------------------

TEST(kernels_scalar_reference_small_cases) {
    const ilm_kernels *k = scalar_set();
    // Q8_0 x Q8 activations: one block, d_w = 0.5, weights 1..32 (and -1 for odd j)
    ilm_block_q8_0 w8 = {ilm_f32_to_f16(0.5f), {0}};
    float x[32];
    for (int j = 0; j < 32; j++) w8.qs[j] = (int8_t)(j % 2 ? -(j + 1) : j + 1), x[j] = 127.0f * (j == 5 ? 1.0f : 0.0f);
    ilm_q8a a;
    k->quantize_q8a(x, 32, &a);
    CHECK(a.d == 1.0f && a.qs[5] == 127 && a.sum == 127);
    ilm_matrix m = {ILM_TYPE_Q8_0, 1, 32, &w8};
    float y = 0;
    k->mm_q8(&m, 0, 1, &a, 1, &y, 1);
    CHECK(y == 0.5f * 127.0f * -6.0f);
    // Q4_0: nibble 9 (value +1) everywhere, element 20 (high nibble of byte 4) is 0 (value -8)
    ilm_block_q4_0 w4 = {ilm_f32_to_f16(2.0f), {0}};
    for (int j = 0; j < 16; j++) w4.qs[j] = 0x99;
    w4.qs[4] = 0x09;
    for (int j = 0; j < 32; j++) x[j] = (j == 20 || j == 4) ? 127.0f : 0.0f;
    k->quantize_q8a(x, 32, &a);
    m = (ilm_matrix){ILM_TYPE_Q4_0, 1, 32, &w4};
    k->mm_q8(&m, 0, 1, &a, 1, &y, 1);
    CHECK(y == 2.0f * (127.0f * 1 + 127.0f * -8));
    k->mm_f32(&m, 0, 1, x, 1, &y, 1);
    CHECK(y == 2.0f * (127.0f * 1 + 127.0f * -8));
    // rope: pair (0, 2) rotates by 90 degrees, pair (1, 3) by 0
    float v[4] = {1, 2, 3, 4}, cs[4] = {0, 1, 1, 0};
    k->rope_neox(v, 4, cs);
    CHECK(v[0] == -3 && v[2] == 1 && v[1] == 2 && v[3] == 4);
    float sm[3] = {0, 0, -INFINITY};
    k->softmax(sm, 3);
    CHECK(sm[0] == 0.5f && sm[1] == 0.5f && sm[2] == 0.0f);
    float r[2] = {3, 4};
    k->rmsnorm(r, r, NULL, 2, 0.0f);
    CHECK_NEAR(r[0], 3 / sqrt(12.5), 1e-7);
}

// ---- activation quantization --------------------------------------------------------------

TEST(kernels_quantize_q8a_bit_exact) {
    const ilm_kernels *ref = scalar_set();
    const int K = 4096 + 32 * 5;
    float *x = random_floats(K, 5, 3.0f);
    // special blocks: all zero; exact ties (amax 127 -> id 1, x = k + 0.5); tiny; huge
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    for (int j = 0; j < 32; j++) x[32 + j] = j == 0 ? 127.0f : (float)(j - 16) + 0.5f;
    for (int j = 0; j < 32; j++) x[64 + j] = 1e-30f * (float)(j - 7);
    for (int j = 0; j < 32; j++) x[96 + j] = 6e4f * (float)(j - 20) / 20.0f;
    ilm_q8a *qr = calloc(K / 32, sizeof(ilm_q8a)), *qs = calloc(K / 32, sizeof(ilm_q8a));
    ref->quantize_q8a(x, K, qr);
    CHECK(qr[0].d == 0.0f && qr[0].sum == 0);
    CHECK(qr[1].d == 1.0f && qr[1].qs[1] == -14 && qr[1].qs[2] == -14 && qr[1].qs[3] == -12);  // -14.5, -13.5, -12.5: ties to even
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += qr[5].qs[j];
    CHECK_EQ(sum, qr[5].sum);
    FOR_EACH_SIMD_SET(set) {
        memset(qs, 0x5A, sizeof(ilm_q8a) * (K / 32));
        set->quantize_q8a(x, K, qs);
        int bad = -1;
        for (int b = 0; b < K / 32 && bad < 0; b++)
            if (memcmp(&qr[b].d, &qs[b].d, 4) || qr[b].sum != qs[b].sum || memcmp(qr[b].qs, qs[b].qs, 32)) bad = b;
        CHECK_MSG(bad < 0, "%s quantize_q8a differs from scalar in block %d", set->name, bad);
    }
    free(x), free(qr), free(qs);
}

// ---- matrix products: bit-exact -----------------------------------------------------------

TEST(kernels_mm_q8_q4_0_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_Q4_0, 1);
}
TEST(kernels_mm_q8_q8_0_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_Q8_0, 1);
}
TEST(kernels_mm_f32_f32_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_F32, 0);
}
TEST(kernels_mm_f32_f16_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_F16, 0);
}
TEST(kernels_mm_f32_bf16_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_BF16, 0);
}
TEST(kernels_mm_f32_q4_0_w4a16_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_Q4_0, 0);
}
TEST(kernels_mm_f32_q8_0_w8a16_bit_exact) {
    FOR_EACH_SIMD_SET(set) check_mm(set, ILM_TYPE_Q8_0, 0);
}
// The scalar set itself obeys batched = single and row-split invariance.
TEST(kernels_scalar_batched_equals_single) {
    check_mm(scalar_set(), ILM_TYPE_Q4_0, 1);
    check_mm(scalar_set(), ILM_TYPE_Q8_0, 0);
}

// W4A16 (exact dequantization + f32 fma chain) against a double-precision dot product.
TEST(kernels_mm_f32_q4_0_matches_double_reference) {
    const int K = 256, rows = 5;
    void *src = random_matrix(ILM_TYPE_Q4_0, rows, K, 3);
    float *x = random_floats(K, 4, 1.0f), wrow[256], y[5];
    ilm_matrix m = {ILM_TYPE_Q4_0, rows, K, src};
    scalar_set()->mm_f32(&m, 0, rows, x, 1, y, rows);
    for (int r = 0; r < rows; r++) {
        scalar_set()->dequant_row(ILM_TYPE_Q4_0, (char *)src + r * ilm_row_bytes(ILM_TYPE_Q4_0, K), wrow, K);
        double s = 0, mag = 0;
        for (int k = 0; k < K; k++) s += (double)wrow[k] * x[k], mag += fabs((double)wrow[k] * x[k]);
        CHECK_NEAR(y[r], s, 1e-6 * mag);
    }
    free(src), free(x);
}

// ---- float activations, per block (mm_fa, --act bf16) -------------------------------------

// mm_fa of every set that has one, against the exact scalar mm_f32 (kernels.h contract):
// |y - y_f32| <= tol · Σ_k |w_k·x_k| per (row, column), tol = 2^-8 on bf16 sets (activations
// rounded to bf16: |x_bf16 - x| <= 2^-9·|x|, doubled for the f32 sums and the offset
// correction) and (K + 64)·2^-24 on f32 sets (reassociation only). Batched = single and the
// row split are bit-exact. Columns 1..17 and 33, odd row counts, K up to 4192.
static void check_mm_fa(const ilm_kernels *set, int type) {
    const ilm_kernels *ref = scalar_set();
    static const int ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33};
    int failures = 0;
    for (int ki = 0; ki < COUNT(test_K_quant); ki++) {
        const int K = test_K_quant[ki], nb = K / 32;
        const double tol = set->round_bf16a ? 1.0 / 256 : (K + 64) * 0x1p-24;
        for (int ri = 0; ri < COUNT(test_rows); ri++) {
            const int rows = test_rows[ri], nmax = 33;
            void *src = random_matrix(type, rows, K, 5000 + 13 * K + rows);
            void *owned;
            const ilm_matrix wref = {type, rows, K, src};
            const ilm_matrix w = pack_for(set, type, src, rows, K, &owned);
            float *x = random_floats((size_t)nmax * K, 91 + K, 2.0f);
            // activations in the set's form: its bf16 rows, or x itself
            ilm_bf16a *xb = malloc(sizeof(ilm_bf16a) * (size_t)nmax * nb);
            if (set->round_bf16a)
                for (int c = 0; c < nmax; c++) set->round_bf16a(x + (size_t)c * K, K, xb + (size_t)c * nb);
            const void *xa = set->round_bf16a ? (const void *)xb : (const void *)x;
            const size_t col = set->round_bf16a ? sizeof(ilm_bf16a) * nb : sizeof(float) * K;
            // Σ|w·x| per (row, column)
            float *wrow = malloc(sizeof(float) * K);
            double *mag = calloc((size_t)rows * nmax, sizeof(double));
            for (int r = 0; r < rows; r++) {
                ref->dequant_row(type, (const char *)src + r * ilm_row_bytes(type, K), wrow, K);
                for (int c = 0; c < nmax; c++)
                    for (int k = 0; k < K; k++) mag[(size_t)c * rows + r] += fabs((double)wrow[k] * x[(size_t)c * K + k]);
            }
            const int ldy = rows + 3;
            const size_t ysz = (size_t)ldy * nmax;
            float *y_ref = malloc(ysz * sizeof(float)), *y = malloc(ysz * sizeof(float));
            float *y_one = malloc(ysz * sizeof(float)), *y_split = malloc(ysz * sizeof(float));
            for (int ni = 0; ni < COUNT(ns); ni++) {
                const int n = ns[ni];
                for (size_t i = 0; i < ysz; i++) y_ref[i] = y[i] = y_one[i] = y_split[i] = -7.0f;
                ref->mm_f32(&wref, 0, rows, x, n, y_ref, ldy);
                set->mm_fa(&w, 0, rows, xa, n, y, ldy);
                for (int c = 0; c < n; c++)
                    set->mm_fa(&w, 0, rows, (const char *)xa + c * col, 1, y_one + (size_t)c * ldy, ldy);
                const int il = set->interleave, sp = ((rows + 1) / 2 + il - 1) / il * il, split = sp < rows ? sp : 0;
                if (split) set->mm_fa(&w, 0, split, xa, n, y_split, ldy);
                set->mm_fa(&w, split, rows, xa, n, y_split, ldy);
                for (int c = 0; c < nmax && failures < 5; c++)
                    for (int r = 0; r < ldy && failures < 5; r++) {
                        const size_t i = (size_t)c * ldy + r;
                        if (r >= rows || c >= n) {  // outside the product: untouched
                            if (y[i] != -7.0f) { failures++; CHECK_MSG(0, "%s mm_fa wrote outside: c %d r %d", set->name, c, r); }
                            continue;
                        }
                        const double bound = tol * mag[(size_t)c * rows + r] + 1e-30;
                        if (!(fabs((double)y[i] - y_ref[i]) <= bound)) {
                            failures++;
                            CHECK_MSG(0, "%s mm_fa type %d K=%d rows=%d n=%d (c %d r %d): %.9g vs f32 %.9g (bound %.3g)",
                                      set->name, type, K, rows, n, c, r, y[i], y_ref[i], bound);
                        }
                    }
                size_t bad = 0;
                if (failures < 5 && !same_bits(y, y_one, ysz, &bad))
                    { failures++; CHECK_MSG(0, "%s mm_fa batched != single: type %d K=%d rows=%d n=%d at %zu", set->name, type, K, rows, n, bad); }
                if (failures < 5 && !same_bits(y, y_split, ysz, &bad))
                    { failures++; CHECK_MSG(0, "%s mm_fa row split changes result: type %d K=%d rows=%d n=%d at %zu", set->name, type, K, rows, n, bad); }
            }
            free(y_ref), free(y), free(y_one), free(y_split), free(x), free(xb), free(wrow), free(mag), free(owned), free(src);
        }
    }
}

TEST(kernels_mm_fa_q4_0_vs_f32) {
    FOR_EACH_SIMD_SET(set) if (set->mm_fa) check_mm_fa(set, ILM_TYPE_Q4_0);
}
TEST(kernels_mm_fa_q8_0_vs_f32) {
    FOR_EACH_SIMD_SET(set) if (set->mm_fa) check_mm_fa(set, ILM_TYPE_Q8_0);
}

// round_bf16a: every value rounded to nearest even (ilm_f32_to_bf16; ties, carries into the
// exponent, signed zeros, large values), in pair order, and the sum of the rounded values.
TEST(kernels_round_bf16a) {
    const int K = 96;
    float x[96];
    uint64_t s = 5;
    for (int k = 0; k < K; k++) x[k] = 3.0f * t_rand_f32(&s);
    const float specials[] = {1.00390625f /* tie, even stays */, 1.01171875f /* tie, rounds up */, -0.0f, 0.0f,
                              1.9999999f /* carry */, -65504.5f, 3e38f, 1e-30f};
    memcpy(x + 32, specials, sizeof specials);
    int tested = 0;
    FOR_EACH_SIMD_SET(set) {
        if (!set->round_bf16a) continue;
        tested++;
        ilm_bf16a out[3];
        set->round_bf16a(x, K, out);
        for (int b = 0; b < K / 32; b++) {
            double sum = 0;
            for (int c = 0; c < 8; c++)
                for (int j = 0; j < 2; j++) {
                    const uint32_t p = out[b].pair[2 * c + j];
                    const int k0 = 32 * b + 4 * c + j;
                    CHECK_MSG((p & 0xFFFF) == ilm_f32_to_bf16(x[k0]) && (p >> 16) == ilm_f32_to_bf16(x[k0 + 2]),
                              "%s pair %d of block %d: %08x, want %04x|%04x", set->name, 2 * c + j, b, p,
                              ilm_f32_to_bf16(x[k0 + 2]), ilm_f32_to_bf16(x[k0]));
                    sum += (double)ilm_bf16_to_f32((uint16_t)p) + ilm_bf16_to_f32((uint16_t)(p >> 16));
                }
            CHECK_NEAR(out[b].sum, sum, 1e-6 * fabs(sum) + 1e-30);
        }
    }
    (void)tested;  // none on CPUs without a bf16 set: nothing to check
}

// ---- attention ----------------------------------------------------------------------------

// Scores: each SIMD set sums in its own order; |error| <= 1e-6 * Σ|q_d·k_d| (f32 rounding of
// a few hundred terms). Values: lanes over d, j in order -> bit-exact for F32 and F16.
TEST(kernels_attention_vs_scalar) {
    const ilm_kernels *ref = scalar_set();
    const int hds[] = {32, 64, 256, 512, 33};
    const int ns[] = {1, 5, 64};
    for (int hi = 0; hi < COUNT(hds); hi++) {
        for (int ni = 0; ni < COUNT(ns); ni++) {
            const int hd = hds[hi], n = ns[ni];
            for (int kvt = 0; kvt < 2; kvt++) {
                const int type = kvt ? ILM_TYPE_F16 : ILM_TYPE_F32;
                const size_t stride = (size_t)(hd + 8) * (kvt ? 2 : 4);  // rows with a gap
                unsigned char *kv = calloc((size_t)n, stride);
                uint64_t s = 99 + hd + n;
                for (int j = 0; j < n; j++)
                    for (int d = 0; d < hd; d++) {
                        const float v = t_rand_f32(&s);
                        if (kvt) ((uint16_t *)(kv + j * stride))[d] = ilm_f32_to_f16(v);
                        else ((float *)(kv + j * stride))[d] = v;
                    }
                float *q = random_floats(hd, 7, 1.0f), *p = random_floats(n, 8, 1.0f);
                float *sr = malloc(n * 4), *ss = malloc(n * 4), *ss2 = malloc(n * 4);
                float *or_ = random_floats(hd, 9, 1.0f), *os = malloc(hd * 4), *os2 = malloc(hd * 4);
                memcpy(os, or_, hd * 4);
                ref->attn_scores(q, kv, type, stride, n, hd, sr);
                ref->attn_values(p, kv, type, stride, n, hd, or_);
                FOR_EACH_SIMD_SET(set) {
                    set->attn_scores(q, kv, type, stride, n, hd, ss);
                    set->attn_scores(q, kv, type, stride, n, hd, ss2);
                    CHECK(same_bits(ss, ss2, n, NULL));  // pure function
                    for (int j = 0; j < n; j++) {
                        double mag = 0;
                        for (int d = 0; d < hd; d++) mag += fabs(q[d]);  // |k| <= 1
                        CHECK_NEAR(ss[j], sr[j], 1e-6 * mag);
                    }
                    float *o0 = random_floats(hd, 9, 1.0f);
                    memcpy(os2, o0, hd * 4);
                    set->attn_values(p, kv, type, stride, n, hd, os2);
                    CHECK_MSG(same_bits(os2, or_, hd, NULL), "%s attn_values hd=%d n=%d type %d not bit-exact",
                              set->name, hd, n, type);
                    free(o0);
                }
                free(kv), free(q), free(p), free(sr), free(ss), free(ss2), free(or_), free(os), free(os2);
            }
        }
    }
}

// ---- elementwise ops ----------------------------------------------------------------------

// Tolerances: rmsnorm 1e-6 relative (sum order only); rope 1e-6 (fma contraction may
// differ); softmax 2e-6 relative; softcap 2e-6 relative + 1e-7 absolute (polynomial tanh);
// geglu 2e-6 relative + 2e-7·|gate·up| absolute: the reference formula 0.5·g·(1 + tanh(u))
// itself loses that much where tanh(u) is near -1.
static void check_close_scaled(const char *what, const char *set, const float *a, const float *ref, int n,
                               double rel, double abs_tol, const float *abs_scale) {
    int bad = 0;
    for (int i = 0; i < n && bad < 3; i++) {
        const double tol = rel * fabs(ref[i]) + abs_tol * (abs_scale ? fabs(abs_scale[i]) : 1.0);
        if (!(fabs((double)a[i] - ref[i]) <= tol)) {
            bad++;
            CHECK_MSG(0, "%s %s n=%d [%d]: %.9g vs scalar %.9g", set, what, n, i, a[i], ref[i]);
        }
    }
}

static void check_close(const char *what, const char *set, const float *a, const float *ref, int n,
                        double rel, double abs_tol) {
    check_close_scaled(what, set, a, ref, n, rel, abs_tol, NULL);
}

TEST(kernels_elementwise_vs_scalar) {
    const ilm_kernels *ref = scalar_set();
    const int ns[] = {1, 7, 8, 31, 33, 256, 512, 2560 + 3};
    for (int ni = 0; ni < COUNT(ns); ni++) {
        const int n = ns[ni];
        float *x = random_floats(n, 11 + n, 4.0f), *w = random_floats(n, 12 + n, 2.0f);
        float *u = random_floats(n, 13 + n, 3.0f), *g = random_floats(n, 14 + n, 6.0f);
        float *r = malloc(n * 4), *s = malloc(n * 4), *s2 = malloc(n * 4);
        float *cs = malloc(n * 8);
        for (int i = 0; i < n; i++) cs[2 * i] = cosf(0.37f * i), cs[2 * i + 1] = sinf(0.37f * i);
        FOR_EACH_SIMD_SET(set) {
            ref->rmsnorm(r, x, w, n, 1e-6f);
            set->rmsnorm(s, x, w, n, 1e-6f);
            check_close("rmsnorm", set->name, s, r, n, 1e-6, 0);
            memcpy(s2, x, n * 4);
            set->rmsnorm(s2, s2, NULL, n, 1e-6f);  // aliasing, no weight
            ref->rmsnorm(r, x, NULL, n, 1e-6f);
            check_close("rmsnorm (in place)", set->name, s2, r, n, 1e-6, 0);

            const int nd = n & ~1;
            memcpy(r, x, n * 4), memcpy(s, x, n * 4);
            ref->rope_neox(r, nd, cs);
            set->rope_neox(s, nd, cs);
            check_close("rope_neox", set->name, s, r, n, 1e-6, 1e-6);

            memcpy(r, g, n * 4), memcpy(s, g, n * 4);
            ref->softmax(r, n);
            set->softmax(s, n);
            check_close("softmax", set->name, s, r, n, 2e-6, 1e-9);

            ref->geglu(r, g, u, n);
            set->geglu(s, g, u, n);
            set->geglu(s2, g, u, n);
            CHECK(same_bits(s, s2, n, NULL));
            for (int i = 0; i < n; i++) s2[i] = g[i] * u[i];
            check_close_scaled("geglu", set->name, s, r, n, 2e-6, 2e-7, s2);

            memcpy(r, g, n * 4), memcpy(s, g, n * 4);
            for (int i = 0; i < n; i++) r[i] = s[i] = 10.0f * g[i];
            ref->softcap(r, n, 30.0f);
            set->softcap(s, n, 30.0f);
            check_close("softcap", set->name, s, r, n, 2e-6, 1e-7);
        }
        free(x), free(w), free(u), free(g), free(r), free(s), free(s2), free(cs);
    }
}

// tanh/exp approximations over a dense sweep, including the |x| < 0.625 switch and ±inf.
TEST(kernels_softcap_geglu_sweep) {
    const ilm_kernels *ref = scalar_set();
    enum { N = 4001 };
    static float x[N], r[N], s[N], ones[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i - N / 2) * 0.01f, ones[i] = 1.0f;
    x[0] = -INFINITY, x[N - 1] = INFINITY;
    FOR_EACH_SIMD_SET(set) {
        memcpy(r, x, sizeof x), memcpy(s, x, sizeof x);
        ref->softcap(r, N, 1.0f);
        set->softcap(s, N, 1.0f);
        check_close("softcap sweep", set->name, s, r, N, 2e-6, 1e-7);
        ref->geglu(r, x + 1, ones, N - 2);
        set->geglu(s, x + 1, ones, N - 2);
        check_close_scaled("gelu sweep", set->name, s, r, N - 2, 2e-6, 2e-7, x + 1);
    }
}

// ---- conversions --------------------------------------------------------------------------

TEST(kernels_f16_conversions_exact) {
    // every f16 bit pattern -> f32 and back; plus f32 values around rounding boundaries
    enum { N = 65536 };
    static uint16_t h[N], h2[N];
    static float f[N], fr[N];
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    const ilm_kernels *ref = scalar_set();
    ref->f16_to_f32(h, fr, N);
    for (int i = 0; i < N; i++) {
        const float v = ilm_f16_to_f32((uint16_t)i);
        CHECK(isnan(v) ? isnan(fr[i]) : memcmp(&v, &fr[i], 4) == 0);
    }
    uint64_t s = 21;
    static float probe[N];
    for (int i = 0; i < N; i++) {
        // random bits in the f16 range, with exact ties every 4th value
        uint32_t u = (uint32_t)t_rand_u64(&s);
        u = (u & 0x80000000u) | (0x33000000u + (u & 0x7fffffffu) % (0x47800000u - 0x33000000u));
        if (i % 4 == 0) u = (u & ~0x1fffu) | 0x1000u;
        memcpy(&probe[i], &u, 4);
    }
    probe[0] = 65520.0f, probe[1] = -65519.0f, probe[2] = 1e-8f, probe[3] = INFINITY, probe[4] = 5.96e-8f;
    FOR_EACH_SIMD_SET(set) {
        set->f16_to_f32(h, f, N);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += isnan(fr[i]) ? !isnan(f[i]) : memcmp(&f[i], &fr[i], 4) != 0;
        CHECK_MSG(bad == 0, "%s f16_to_f32: %d values differ from half.h", set->name, bad);
        set->f32_to_f16(probe, h2, N);
        bad = 0;
        for (int i = 0; i < N; i++) bad += h2[i] != ilm_f32_to_f16(probe[i]);
        CHECK_MSG(bad == 0, "%s f32_to_f16 (hardware conversion): %d values differ from half.h", set->name, bad);
        const float nan = NAN;
        set->f32_to_f16(&nan, h2, 1);
        CHECK((h2[0] & 0x7c00) == 0x7c00 && (h2[0] & 0x3ff) != 0);
    }
}

TEST(kernels_dequant_row_vs_scalar) {
    const ilm_kernels *ref = scalar_set();
    const int types[] = {ILM_TYPE_F32, ILM_TYPE_F16, ILM_TYPE_BF16, ILM_TYPE_Q4_0, ILM_TYPE_Q8_0};
    const int K = 4096 + 64;
    float *a = malloc(K * 4), *b = malloc(K * 4);
    for (int ti = 0; ti < COUNT(types); ti++) {
        void *m = random_matrix(types[ti], 1, K, 31);
        ref->dequant_row(types[ti], m, a, K);
        FOR_EACH_SIMD_SET(set) {
            set->dequant_row(types[ti], m, b, K);
            CHECK_MSG(same_bits(a, b, K, NULL), "%s dequant_row type %d", set->name, types[ti]);
        }
        free(m);
    }
    // Q4_0 element order: low nibbles are elements 0..15, high nibbles 16..31 (gemma4.md §5.2)
    ilm_block_q4_0 blk = {ilm_f32_to_f16(1.0f), {0}};
    blk.qs[3] = 0xA2;
    ref->dequant_row(ILM_TYPE_Q4_0, &blk, a, 32);
    CHECK(a[3] == -6.0f && a[19] == 2.0f && a[0] == -8.0f);
    free(a), free(b);
}

// Packing into several disjoint ranges, in any order, gives the same bytes as one call.
TEST(kernels_pack_ranges_independent) {
    const int types[] = {ILM_TYPE_F32, ILM_TYPE_F16, ILM_TYPE_BF16, ILM_TYPE_Q4_0, ILM_TYPE_Q8_0};
    FOR_EACH_SIMD_SET(set) {
        for (int ti = 0; ti < COUNT(types); ti++) {
            const int rows = 5 * set->interleave + 3, K = 96;
            void *src = random_matrix(types[ti], rows, K, 41);
            const size_t size = set->packed_size(types[ti], rows, K);
            CHECK(size >= ilm_row_bytes(types[ti], K) * rows);
            unsigned char *one = malloc(size), *many = malloc(size);
            memset(one, 1, size), memset(many, 2, size);
            set->pack(types[ti], src, rows, K, one, 0, rows);
            const int il = set->interleave;
            set->pack(types[ti], src, rows, K, many, 3 * il, rows);
            set->pack(types[ti], src, rows, K, many, il, 3 * il);
            set->pack(types[ti], src, rows, K, many, 0, il);
            CHECK_MSG(memcmp(one, many, size) == 0, "%s pack type %d", set->name, types[ti]);
            free(one), free(many), free(src);
        }
    }
}

// Extreme int8 values: Q8_0 weights of -128 and 127 (the packers' |w| and q+128 tricks and
// int16 pair sums are at their limits) and Q4_0 nibbles 0 / 15, against activations that
// quantize to ±127 everywhere. Every set must still match scalar bit for bit, for every n.
TEST(kernels_mm_q8_extreme_values) {
    const ilm_kernels *ref = scalar_set();
    const int rows = 37, K = 256, nmax = 11, nb = K / 32;
    float *x = malloc(sizeof(float) * (size_t)nmax * K);
    uint64_t s = 4242;
    for (int i = 0; i < nmax * K; i++) x[i] = (t_rand_u64(&s) & 1) ? 1.0f : -1.0f;  // q = ±127, d = 1/127
    ilm_q8a *xq = malloc(sizeof(ilm_q8a) * (size_t)nmax * nb);
    for (int c = 0; c < nmax; c++) ref->quantize_q8a(x + (size_t)c * K, K, xq + (size_t)c * nb);
    const int types[] = {ILM_TYPE_Q8_0, ILM_TYPE_Q4_0};
    for (int ti = 0; ti < 2; ti++) {
        const int type = types[ti];
        void *src = random_matrix(type, rows, K, 31 + ti);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < nb; b++) {
                // row patterns: all minimum, all maximum, alternating, random extremes
                const int pat = (r + b) % 4;
                if (type == ILM_TYPE_Q8_0) {
                    ilm_block_q8_0 *blk = (ilm_block_q8_0 *)((char *)src + ilm_row_bytes(type, K) * r) + b;
                    for (int j = 0; j < 32; j++)
                        blk->qs[j] = pat == 0 ? -128 : pat == 1 ? 127 : pat == 2 ? (j & 1 ? 127 : -128)
                                                                            : ((t_rand_u64(&s) & 1) ? 127 : -128);
                } else {
                    ilm_block_q4_0 *blk = (ilm_block_q4_0 *)((char *)src + ilm_row_bytes(type, K) * r) + b;
                    for (int j = 0; j < 16; j++)
                        blk->qs[j] = pat == 0 ? 0x00 : pat == 1 ? 0xFF : pat == 2 ? 0x0F : (uint8_t)((t_rand_u64(&s) & 1) ? 0xF0 : 0x0F);
                }
            }
        const ilm_matrix wref = {type, rows, K, src};
        float *y_ref = malloc(sizeof(float) * (size_t)rows * nmax), *y = malloc(sizeof(float) * (size_t)rows * nmax);
        float *y_one = malloc(sizeof(float) * (size_t)rows * nmax);
        FOR_EACH_SIMD_SET(set) {
            void *owned;
            const ilm_matrix w = pack_for(set, type, src, rows, K, &owned);
            for (int n = 1; n <= nmax; n += 2) {
                ref->mm_q8(&wref, 0, rows, xq, n, y_ref, rows);
                set->mm_q8(&w, 0, rows, xq, n, y, rows);
                for (int c = 0; c < n; c++) set->mm_q8(&w, 0, rows, xq + (size_t)c * nb, 1, y_one + (size_t)c * rows, rows);
                CHECK_MSG(same_bits(y, y_ref, (size_t)rows * n, NULL), "%s extreme type %d n=%d vs scalar", set->name, type, n);
                CHECK_MSG(same_bits(y, y_one, (size_t)rows * n, NULL), "%s extreme type %d n=%d batched", set->name, type, n);
            }
            free(owned);
        }
        free(y_ref), free(y), free(y_one), free(src);
    }
    free(x), free(xq);
}

// The engine splits one head's keys at the KV ring's wrap into two calls; a score must not
// depend on where a call starts or how many rows it has (kernels group rows), and values
// accumulated over [0, a) then [a, n) must equal one call over [0, n), bit for bit.
TEST(kernels_attention_split_invariant) {
    const int hds[] = {40, 64, 256, 512};
    const int n = 37, splits[] = {1, 3, 4, 17, 36};
    for (int hi = 0; hi < COUNT(hds); hi++) {
        const int hd = hds[hi];
        for (int kvt = 0; kvt < 2; kvt++) {
            const int type = kvt ? ILM_TYPE_F16 : ILM_TYPE_F32;
            const size_t stride = (size_t)(hd + 24) * (kvt ? 2 : 4);
            unsigned char *kv = calloc((size_t)n, stride);
            uint64_t s = 5 + hd;
            for (int j = 0; j < n; j++)
                for (int d = 0; d < hd; d++) {
                    const float v = t_rand_f32(&s);
                    if (kvt) ((uint16_t *)(kv + j * stride))[d] = ilm_f32_to_f16(v);
                    else ((float *)(kv + j * stride))[d] = v;
                }
            float *q = random_floats(hd, 11, 1.0f), *p = random_floats(n, 12, 1.0f);
            float *full = malloc(n * 4), *parts = malloc(n * 4);
            float *o_full = malloc(hd * 4), *o_parts = malloc(hd * 4);
            FOR_EACH_SIMD_SET(set) {
                set->attn_scores(q, kv, type, stride, n, hd, full);
                for (int si = 0; si < COUNT(splits); si++) {
                    const int a = splits[si];
                    set->attn_scores(q, kv, type, stride, a, hd, parts);
                    set->attn_scores(q, kv + (size_t)a * stride, type, stride, n - a, hd, parts + a);
                    CHECK_MSG(same_bits(full, parts, n, NULL), "%s attn_scores split at %d hd=%d type %d", set->name, a, hd, type);
                    for (int d = 0; d < hd; d++) o_full[d] = o_parts[d] = 0.25f * (float)(d % 7);
                    set->attn_values(p, kv, type, stride, n, hd, o_full);
                    set->attn_values(p, kv, type, stride, a, hd, o_parts);
                    set->attn_values(p + a, kv + (size_t)a * stride, type, stride, n - a, hd, o_parts);
                    CHECK_MSG(same_bits(o_full, o_parts, hd, NULL), "%s attn_values split at %d hd=%d type %d", set->name, a, hd, type);
                }
            }
            free(kv), free(q), free(p), free(full), free(parts), free(o_full), free(o_parts);
        }
    }
}
