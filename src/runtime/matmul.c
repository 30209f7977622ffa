// matmul.c — matrix products dispatched on the thread pool. See matmul.h.
#include "runtime/matmul.h"

#include <stdatomic.h>

// ---- one dispatch: static slices, stolen at the end --------------------------------------
// The rows of all jobs of a dispatch are cut into chunks (CHUNKS_PER_THREAD per thread, whole
// tiles of COL1_ROWS groups) and dealt out as contiguous slices, one per thread, by
// ilm_split_rows. A thread takes its own chunks front to back through its cursor, then
// takes what is left of the other threads' slices through theirs: when one core runs slower
// (a shared VM, a neighbour's burst) the other finishes its rows instead of waiting at the end
// of the product (Zen 5, 2 threads, 12B decode: 6% of the time was that wait). Each row's
// value does not depend on who computes it: results are the same bit for bit. On several
// NUMA nodes the slices stay static (a thread's rows live on its node: placement.h).
#define CHUNKS_PER_THREAD 16
#define COL1_ROWS 4        // row groups of the one-column tiles (simd/*: COL1_GROUPS)
#define MAX_CURSORS 64     // threads with a cursor; larger pools split statically
#define MAX_DYN_JOBS 32    // jobs of a dispatch cut into chunks; more split statically

typedef struct {
    _Alignas(64) atomic_int next;   // next chunk of this thread's slice
    int end;                        // one past its last chunk
} mm_cursor;

typedef struct {
    ilm_pool *pool;
    const ilm_mm_job *jobs;
    int n_jobs;
    int chunk_rows;                 // rows per chunk (a multiple of the interleave)
    int first[MAX_DYN_JOBS + 1];    // chunk index where each job starts; first[n_jobs] = all
    mm_cursor *cur;                 // NULL: static slices
} mm_task;

static void mm_rows(const mm_task *t, const ilm_mm_job *jb, int ith, int r0, int r1) {
    ilm_matrix m = jb->w->m;
    if (jb->w->placed.n_copies) m.data = ilm_placed_for(&jb->w->placed, t->pool, ith);
    if (jb->xq) ilm_k->mm_q8(&m, r0, r1, jb->xq, jb->n, jb->y, jb->ldy);
    else if (jb->xa) ilm_k->mm_fa(&m, r0, r1, jb->xa, jb->n, jb->y, jb->ldy);
    else ilm_k->mm_f32(&m, r0, r1, jb->x, jb->n, jb->y, jb->ldy);
}

// Chunk c (of all jobs): its job and rows.
static void mm_chunk(const mm_task *t, int c, int ith) {
    int j = 0;
    while (c >= t->first[j + 1]) j++;
    const ilm_mm_job *jb = &t->jobs[j];
    const int rows = jb->w->m.rows, r0 = (c - t->first[j]) * t->chunk_rows;
    mm_rows(t, jb, ith, r0, r0 + t->chunk_rows < rows ? r0 + t->chunk_rows : rows);
}

static void mm_task_fn(void *ctx, int ith, int nth) {
    const mm_task *t = ctx;
    if (t->cur) {
        for (int k = 0; k < nth; k++) {   // own slice first, then the others' leftovers
            mm_cursor *cu = &t->cur[(ith + k) % nth];
            for (int c; (c = atomic_fetch_add_explicit(&cu->next, 1, memory_order_relaxed)) < cu->end;)
                mm_chunk(t, c, ith);
        }
        return;
    }
    for (int j = 0; j < t->n_jobs; j++) {
        const ilm_mm_job *jb = &t->jobs[j];
        if (!jb->n) continue;
        int r0, r1;
        ilm_split_rows(jb->w->m.rows, ilm_k->interleave, ith, nth, &r0, &r1);
        if (r0 < r1) mm_rows(t, jb, ith, r0, r1);
    }
}

void ilm_mm_run(ilm_pool *pool, const ilm_mm_job *jobs, int n_jobs) {
    mm_task t = {pool, jobs, n_jobs, 0, {0}, NULL};
    const int nth = ilm_pool_size(pool);
    mm_cursor cur[MAX_CURSORS];
    long rows = 0;
    for (int j = 0; j < n_jobs; j++) rows += jobs[j].n ? jobs[j].w->m.rows : 0;
    if (nth > 1 && nth <= MAX_CURSORS && n_jobs <= MAX_DYN_JOBS && ilm_pool_n_nodes(pool) == 1 && rows > 0) {
        const int tile = ilm_k->interleave * COL1_ROWS;
        long per = rows / ((long)nth * CHUNKS_PER_THREAD);
        t.chunk_rows = (int)((per + tile - 1) / tile * tile);
        if (t.chunk_rows < tile) t.chunk_rows = tile;
        for (int j = 0; j < n_jobs; j++) {
            const int r = jobs[j].n ? jobs[j].w->m.rows : 0;
            t.first[j + 1] = t.first[j] + (r + t.chunk_rows - 1) / t.chunk_rows;
        }
        for (int k = 0; k < nth; k++) {   // thread k's slice of chunks, as ilm_split_rows deals rows
            int c0, c1;
            ilm_split_rows(t.first[n_jobs], 1, k, nth, &c0, &c1);
            atomic_init(&cur[k].next, c0);
            cur[k].end = c1;
        }
        t.cur = cur;
    }
    ilm_pool_run(pool, mm_task_fn, &t);
}

int ilm_matmul_kind(int act, const ilm_weight *w) {
    const unsigned acts = ilm_type(w->m.type)->acts;
    if (act == ILM_ACTS_Q8 && (acts & ILM_ACT_Q8)) return ILM_ACT_Q8;
    if (act == ILM_ACTS_BF16 && (acts & ILM_ACT_FA) && ilm_k->mm_fa) return ILM_ACT_FA;
    return ILM_ACT_F32;
}

bool ilm_matmul_uses_q8(int act, const ilm_weight *w) { return ilm_matmul_kind(act, w) == ILM_ACT_Q8; }

size_t ilm_act_scratch_bytes(int n, int K) { return (size_t)n * (size_t)(K / ILM_QK + 1) * ILM_ACT_SCRATCH_BLOCK; }

// Rows of the set's bf16 form are read by mm_fa when the set rounds (round_bf16a).
static bool fa_rounds(int kind) { return kind == ILM_ACT_FA && ilm_k->round_bf16a; }

void ilm_prepare_rows(int kind, const float *x, int n, int K, void *scratch) {
    if (kind == ILM_ACT_Q8) ilm_quantize_rows(x, n, K, K, scratch);
    else if (fa_rounds(kind))
        for (int i = 0; i < n; i++) ilm_k->round_bf16a(x + (size_t)i * K, K, (ilm_bf16a *)scratch + (size_t)i * (K / ILM_QK));
}

ilm_mm_job ilm_mm_job_for(int kind, const ilm_weight *w, const float *x, const void *scratch, int row0, int n,
                          float *y, int ldy) {
    const int K = w->m.cols;
    ilm_mm_job j = {w, x + (size_t)row0 * K, NULL, n, y, ldy, NULL};
    if (kind == ILM_ACT_Q8) j.xq = (const ilm_q8a *)scratch + (size_t)row0 * (K / ILM_QK);
    else if (fa_rounds(kind)) j.xa = (const ilm_bf16a *)scratch + (size_t)row0 * (K / ILM_QK);
    else if (kind == ILM_ACT_FA) j.xa = j.x;
    return j;
}

void ilm_quantize_rows(const float *x, int n, int K, int ldx, ilm_q8a *dst) {
    for (int i = 0; i < n; i++) ilm_k->quantize_q8a(x + (size_t)i * ldx, K, dst + (size_t)i * (K / ILM_QK));
}

typedef struct {
    const float *x;
    int kind, n, K;
    void *dst;
} prep_task;

static void prep_task_fn(void *ctx, int ith, int nth) {
    const prep_task *t = ctx;
    int i0 = (int)((long)t->n * ith / nth), i1 = (int)((long)t->n * (ith + 1) / nth);
    const size_t block = t->kind == ILM_ACT_Q8 ? sizeof(ilm_q8a) : sizeof(ilm_bf16a);
    ilm_prepare_rows(t->kind, t->x + (size_t)i0 * t->K, i1 - i0, t->K, (char *)t->dst + (size_t)i0 * (t->K / ILM_QK) * block);
}

// Rows are independent: from 2 rows (speculative verification, prompts) they are prepared
// on the pool; one row (decode) inline, where a dispatch (~1 µs) would cost more than the work.
static void prepare_rows_pool(ilm_pool *pool, int kind, const float *x, int n, int K, void *dst) {
    prep_task t = {x, kind, n, K, dst};
    if (kind != ILM_ACT_Q8 && !fa_rounds(kind)) return;
    if (n < 2) ilm_prepare_rows(kind, x, n, K, dst);
    else ilm_pool_run(pool, prep_task_fn, &t);
}

void ilm_matmul(ilm_pool *pool, int act, void *scratch, const ilm_weight *w, const float *x, int n, float *y,
                int ldy) {
    const int kind = ilm_matmul_kind(act, w);
    prepare_rows_pool(pool, kind, x, n, w->m.cols, scratch);
    const ilm_mm_job j = ilm_mm_job_for(kind, w, x, scratch, 0, n, y, ldy);
    ilm_mm_run(pool, &j, 1);
}

// Jobs per pool dispatch in ilm_matmul_shared: the products of one chunk share one
// ilm_pool_run; more weights take more dispatches (none is dropped).
#define SHARED_CHUNK 8

void ilm_matmul_shared(ilm_pool *pool, int act, void *scratch, const ilm_weight *const *ws, float *const *ys,
                       const int *ldys, int nw, const float *x, bool x_quantized, int n) {
    // In one mode the weights need at most one prepared form (Q8 in the Q8 mode, the set's
    // bf16 rows in the bf16 mode): prepare it once for all of them.
    int prep = ILM_ACT_F32;
    for (int i = 0; i < nw; i++) {
        const int kind = ilm_matmul_kind(act, ws[i]);
        if (kind == ILM_ACT_Q8 || fa_rounds(kind)) prep = kind;
    }
    if (prep != ILM_ACT_F32 && !(prep == ILM_ACT_Q8 && x_quantized)) prepare_rows_pool(pool, prep, x, n, ws[0]->m.cols, scratch);
    int i0 = 0;
    do {   // at least one dispatch, as before, even for nw == 0
        ilm_mm_job jobs[SHARED_CHUNK];
        int nj = 0;
        for (; nj < SHARED_CHUNK && i0 + nj < nw; nj++) {
            int i = i0 + nj;
            jobs[nj] = ilm_mm_job_for(ilm_matmul_kind(act, ws[i]), ws[i], x, scratch, 0, n, ys[i], ldys[i]);
        }
        ilm_mm_run(pool, jobs, nj);
        i0 += nj;
    } while (i0 < nw);
}
