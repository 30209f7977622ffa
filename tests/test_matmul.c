// test_matmul.c — matrix products on the pool (src/runtime/matmul.c): ilm_matmul_shared gives
// every output bit-for-bit what ilm_matmul gives, for any number of weights (more than one
// dispatch's worth included), every compiled kernel set, f32 and Q8 activations, on a fake
// 2-node machine with one placed copy of each weight per node.
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runtime/matmul.h"
#include "runtime/placement.h"
#include "simd/kernels.h"
#include "tools/quantize.h"

enum { K = 64, N_ROWS = 3, N_W = 19 };

typedef struct {
    ilm_weight w;
    void *file;          // GGUF-layout data
    float *y, *y_ref;    // [N_ROWS][ldy]
    int ldy;
} mm_case;

static void pack_weight(void *ctx, void *dst, int ith, int nth) {
    const ilm_weight *w = ctx;
    int r0, r1;
    ilm_split_rows(w->m.rows, ilm_k->interleave, ith, nth, &r0, &r1);
    if (r1 > r0) ilm_k->pack(w->m.type, w->file_data, w->m.rows, w->m.cols, dst, r0, r1);
}

// Weight i: type cycles F32 / Q8_0 / Q4_0, rows vary (odd counts leave a short group).
static int make_case(mm_case *c, int i, ilm_pool *pool, unsigned *seed) {
    static const int types[] = {ILM_TYPE_F32, ILM_TYPE_Q8_0, ILM_TYPE_Q4_0};
    int type = types[i % 3], rows = 5 + 7 * i;
    size_t row_bytes = ilm_row_bytes(type, K);
    memset(c, 0, sizeof *c);
    c->file = malloc(row_bytes * (size_t)rows);
    float row[K];
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < K; k++) row[k] = (float)((*seed = *seed * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;
        CHECK_EQ(ilm_quantize_row(type, row, (char *)c->file + row_bytes * (size_t)r, K), row_bytes);
    }
    c->w.m = (ilm_matrix){type, rows, K, c->file};
    c->w.file_data = c->file;
    size_t packed = ilm_k->interleave > 1 ? ilm_k->packed_size(type, rows, K) : 0;
    if (packed) {
        ilm_err err = {{0}};
        if (ilm_placed_alloc(pool, &c->w.placed, packed, pack_weight, &c->w, &err) != 0) {
            t_fail(__FILE__, __LINE__, "placing weight %d: %s", i, err.msg);
            return -1;
        }
        c->w.m.data = c->w.placed.copy[0];
    }
    c->ldy = rows + 3;   // a gap after each output row
    c->y = calloc((size_t)N_ROWS * c->ldy, sizeof *c->y);
    c->y_ref = calloc((size_t)N_ROWS * c->ldy, sizeof *c->y_ref);
    return 0;
}

static void free_case(mm_case *c) {
    if (c->w.placed.n_copies) ilm_placed_free(&c->w.placed);
    free(c->file), free(c->y), free(c->y_ref);
}

static void check_shared(ilm_pool *pool, mm_case *cs, const float *x, int act, bool pre_quantized) {
    static _Alignas(64) char q_ref[N_ROWS * (K / ILM_QK + 1) * ILM_ACT_SCRATCH_BLOCK], q[sizeof q_ref];
    const ilm_weight *ws[N_W];
    float *ys[N_W];
    int ldys[N_W];
    for (int i = 0; i < N_W; i++) {
        ilm_matmul(pool, act, q_ref, &cs[i].w, x, N_ROWS, cs[i].y_ref, cs[i].ldy);
        memset(cs[i].y, 0xff, (size_t)N_ROWS * cs[i].ldy * sizeof *cs[i].y);   // NaN: unwritten
        ws[i] = &cs[i].w, ys[i] = cs[i].y, ldys[i] = cs[i].ldy;
    }
    if (pre_quantized) ilm_quantize_rows(x, N_ROWS, K, K, (ilm_q8a *)q);
    ilm_matmul_shared(pool, act, q, ws, ys, ldys, N_W, x, pre_quantized, N_ROWS);
    for (int i = 0; i < N_W; i++)
        for (int c = 0; c < N_ROWS; c++)
            CHECK_MSG(memcmp(cs[i].y + (size_t)c * cs[i].ldy, cs[i].y_ref + (size_t)c * cs[i].ldy,
                             (size_t)cs[i].w.m.rows * sizeof(float)) == 0,
                      "%s, act %d, pre-quantized %d: weight %d of %d (type %d), row %d differs",
                      ilm_k->name, act, pre_quantized, i, N_W, cs[i].w.m.type, c);
}

TEST(matmul_shared_equals_matmul_for_any_count) {
    ilm_topology topo;
    ilm_err err = {{0}};
    CHECK_EQ(ilm_topology_from_spec(&topo, "2x2@64M", &err), 0);
    ilm_pool_opts o = {.n_threads = 4, .numa = ILM_NUMA_REPLICATE, .pin = 0};
    ilm_pool *pool = NULL;
    CHECK_EQ(ilm_pool_create_on(&pool, &o, &topo, &err), 0);
    ilm_topology_free(&topo);
    if (!pool) return;
    // mbind to the fake nodes fails (test_numa checks that it is reported once): count the
    // warning as given so this test's output stays quiet.
    ilm_pool_placement(pool)->mbind_failures = 1;
    const char *saved = ilm_k->name;
    float x[N_ROWS * K];
    unsigned seed = 7;
    for (int i = 0; i < N_ROWS * K; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / (1 << 23) - 1.0f;
    for (const char *const *name = ilm_kernels_all(); *name; name++) {
        if (!ilm_kernels_get(*name)) continue;   // compiled in, not supported by this CPU
        char msg[128];
        CHECK_EQ(ilm_kernels_select(*name, msg, sizeof msg), 0);
        mm_case cs[N_W];
        int made = 0;
        while (made < N_W && make_case(&cs[made], made, pool, &seed) == 0) made++;
        if (made == N_W) {
            for (int act = ILM_ACTS_Q8; act <= ILM_ACTS_F32; act++) {
                check_shared(pool, cs, x, act, false);
                if (act == ILM_ACTS_Q8) check_shared(pool, cs, x, act, true);
            }
            // Fewer weights than one dispatch holds, and none at all.
            float *ys[1] = {cs[0].y};
            const ilm_weight *ws[1] = {&cs[0].w};
            ilm_q8a q[N_ROWS * K / ILM_QK];
            ilm_matmul_shared(pool, false, q, ws, ys, &cs[0].ldy, 0, x, false, N_ROWS);
            ilm_matmul_shared(pool, false, q, ws, ys, &cs[0].ldy, 1, x, false, N_ROWS);
        }
        for (int i = 0; i < made; i++) free_case(&cs[i]);
    }
    char msg[128];
    CHECK_EQ(ilm_kernels_select(saved, msg, sizeof msg), 0);
    ilm_pool_destroy(pool);
}

// One node, several threads: the rows of a dispatch are cut into chunks that the threads take
// from their own slice and then from each other's (matmul.c). Every output must be the one
// thread's bit for bit and every row written, for products of a few rows to thousands (many
// chunks per thread, a short last chunk), one and three columns, several jobs per dispatch
// (one with no columns), and more jobs than are chunked (the static split).
enum { N_DYN = 40 };

static void run_jobs(ilm_pool *pool, mm_case *cs, int nj, const float *x, const ilm_q8a *xq, int n,
                     bool ref) {
    ilm_mm_job jobs[N_DYN];
    for (int i = 0; i < nj; i++) {
        const int kind = ilm_matmul_kind(ILM_ACTS_Q8, &cs[i].w);
        jobs[i] = ilm_mm_job_for(kind, &cs[i].w, x, xq, 0, i == 1 ? 0 : n, ref ? cs[i].y_ref : cs[i].y, cs[i].ldy);
        if (!ref) memset(cs[i].y, 0xff, (size_t)N_ROWS * cs[i].ldy * sizeof *cs[i].y);
    }
    ilm_mm_run(pool, jobs, nj);
}

TEST(matmul_chunked_split_equals_one_thread) {
    ilm_topology topo;
    ilm_err err = {{0}};
    CHECK_EQ(ilm_topology_from_spec(&topo, "1x4@64M", &err), 0);
    ilm_pool_opts o1 = {.n_threads = 1, .pin = 0}, o4 = {.n_threads = 4, .pin = 0};
    ilm_pool *one = NULL, *four = NULL;
    CHECK_EQ(ilm_pool_create_on(&one, &o1, &topo, &err), 0);
    CHECK_EQ(ilm_pool_create_on(&four, &o4, &topo, &err), 0);
    ilm_topology_free(&topo);
    if (!one || !four) return;
    const char *saved = ilm_k->name;
    float x[N_ROWS * K];
    unsigned seed = 11;
    for (int i = 0; i < N_ROWS * K; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / (1 << 23) - 1.0f;
    ilm_q8a xq[N_ROWS * K / ILM_QK];
    ilm_quantize_rows(x, N_ROWS, K, K, xq);
    for (const char *const *name = ilm_kernels_all(); *name; name++) {
        if (!ilm_kernels_get(*name)) continue;
        char msg[128];
        CHECK_EQ(ilm_kernels_select(*name, msg, sizeof msg), 0);
        static mm_case cs[N_DYN];
        int made = 0;
        while (made < N_DYN && make_case(&cs[made], made, four, &seed) == 0) made++;
        if (made == N_DYN) {
            // Large products: weights 0 and 2 become Q8_0 of 2049 rows and Q4_0 of 1006 rows.
            free_case(&cs[0]), free_case(&cs[2]);
            CHECK_EQ(make_case(&cs[0], 292, four, &seed), 0);   // rows 5 + 7i, type i % 3
            CHECK_EQ(make_case(&cs[2], 143, four, &seed), 0);
            static const int counts[] = {1, 2, 3, 8, N_DYN};
            for (int n = 1; n <= N_ROWS; n += 2)
                for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
                    const int nj = counts[k];
                    run_jobs(one, cs, nj, x, xq, n, true);
                    run_jobs(four, cs, nj, x, xq, n, false);
                    for (int i = 0; i < nj; i++)
                        for (int c = 0; c < (i == 1 ? 0 : n); c++)
                            CHECK_MSG(memcmp(cs[i].y + (size_t)c * cs[i].ldy, cs[i].y_ref + (size_t)c * cs[i].ldy,
                                             (size_t)cs[i].w.m.rows * sizeof(float)) == 0,
                                      "%s: %d jobs, %d columns: job %d (%d rows, type %d), column %d differs",
                                      ilm_k->name, nj, n, i, cs[i].w.m.rows, cs[i].w.m.type, c);
                }
        }
        for (int i = 0; i < made; i++) free_case(&cs[i]);
    }
    char msg[128];
    CHECK_EQ(ilm_kernels_select(saved, msg, sizeof msg), 0);
    ilm_pool_destroy(one);
    ilm_pool_destroy(four);
}
