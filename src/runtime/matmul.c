// matmul.c — matrix products dispatched on the thread pool. See matmul.h.
#include "runtime/matmul.h"

typedef struct {
    ilm_pool *pool;
    const ilm_mm_job *jobs;
    int n_jobs;
} mm_task;

static void mm_task_fn(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    for (int j = 0; j < t->n_jobs; j++) {
        const ilm_mm_job *jb = &t->jobs[j];
        if (!jb->n) continue;
        int r0, r1;
        ilm_split_rows(jb->w->m.rows, ilm_k->interleave, ith, nth, &r0, &r1);
        if (r0 >= r1) continue;
        ilm_matrix m = jb->w->m;
        if (jb->w->placed.n_copies) m.data = ilm_placed_for(&jb->w->placed, t->pool, ith);
        if (jb->xq) ilm_k->mm_q8(&m, r0, r1, jb->xq, jb->n, jb->y, jb->ldy);
        else ilm_k->mm_f32(&m, r0, r1, jb->x, jb->n, jb->y, jb->ldy);
    }
}

void ilm_mm_run(ilm_pool *pool, const ilm_mm_job *jobs, int n_jobs) {
    mm_task t = {pool, jobs, n_jobs};
    ilm_pool_run(pool, mm_task_fn, &t);
}

bool ilm_matmul_uses_q8(bool act_f32, const ilm_weight *w) {
    return !act_f32 && (ilm_type(w->m.type)->acts & ILM_ACT_Q8);
}

void ilm_quantize_rows(const float *x, int n, int K, int ldx, ilm_q8a *dst) {
    for (int i = 0; i < n; i++) ilm_k->quantize_q8a(x + (size_t)i * ldx, K, dst + (size_t)i * (K / ILM_QK));
}

typedef struct {
    const float *x;
    int n, K, ldx;
    ilm_q8a *dst;
} quant_task;

static void quant_task_fn(void *ctx, int ith, int nth) {
    const quant_task *t = ctx;
    int i0 = (int)((long)t->n * ith / nth), i1 = (int)((long)t->n * (ith + 1) / nth);
    ilm_quantize_rows(t->x + (size_t)i0 * t->ldx, i1 - i0, t->K, t->ldx, t->dst + (size_t)i0 * (t->K / ILM_QK));
}

// Rows are independent: from 2 rows (speculative verification, prompts) they are quantized
// on the pool; one row (decode) inline, where a dispatch (~1 µs) would cost more than the work.
static void quantize_rows_pool(ilm_pool *pool, const float *x, int n, int K, ilm_q8a *dst) {
    quant_task t = {x, n, K, K, dst};
    if (n < 2) ilm_quantize_rows(x, n, K, K, dst);
    else ilm_pool_run(pool, quant_task_fn, &t);
}

void ilm_matmul(ilm_pool *pool, bool act_f32, ilm_q8a *qscratch, const ilm_weight *w, const float *x, int n, float *y,
                int ldy) {
    ilm_mm_job j = {w, x, NULL, n, y, ldy};
    if (ilm_matmul_uses_q8(act_f32, w)) {
        quantize_rows_pool(pool, x, n, w->m.cols, qscratch);
        j.xq = qscratch;
    }
    ilm_mm_run(pool, &j, 1);
}

// Jobs per pool dispatch in ilm_matmul_shared: the products of one chunk share one
// ilm_pool_run; more weights take more dispatches (none is dropped).
#define SHARED_CHUNK 8

void ilm_matmul_shared(ilm_pool *pool, bool act_f32, ilm_q8a *qscratch, const ilm_weight *const *ws, float *const *ys,
                       const int *ldys, int nw, const float *x, bool x_quantized, int n) {
    bool need_q8 = false;
    for (int i = 0; i < nw; i++) need_q8 |= ilm_matmul_uses_q8(act_f32, ws[i]);
    if (need_q8 && !x_quantized) quantize_rows_pool(pool, x, n, ws[0]->m.cols, qscratch);
    int i0 = 0;
    do {   // at least one dispatch, as before, even for nw == 0
        ilm_mm_job jobs[SHARED_CHUNK];
        int nj = 0;
        for (; nj < SHARED_CHUNK && i0 + nj < nw; nj++) {
            int i = i0 + nj;
            jobs[nj] = (ilm_mm_job){ws[i], x, ilm_matmul_uses_q8(act_f32, ws[i]) ? qscratch : NULL, n, ys[i], ldys[i]};
        }
        ilm_mm_run(pool, jobs, nj);
        i0 += nj;
    } while (i0 < nw);
}
