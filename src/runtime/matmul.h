// matmul.h — matrix products on the thread pool: each thread multiplies its own slice of
// output rows, with the kernel the weight type needs, reading the weight copy placed on its
// node (placement.h). On one node a thread that finishes its slice early takes the rest of a
// slower thread's in chunks (matmul.c); on several the slices are static. Either way every
// output is the same bit for bit.
//
// Top of runtime/: includes weight.h (ilm_weight) and threadpool.h; nothing in runtime/
// includes this header.
#pragma once
#include <stdbool.h>

#include "runtime/threadpool.h"
#include "runtime/weight.h"
#include "simd/kernels.h"

typedef struct {
    const ilm_weight *w;
    const float *x;       // f32 activations [n][K] (used when xq and xa are NULL: mm_f32)
    const ilm_q8a *xq;    // quantized activations [n][K/32] (mm_q8)
    int n;
    float *y;             // y[c*ldy + r]
    int ldy;
    const void *xa;       // mm_fa's activations: x itself, or ilm_bf16a rows [n][K/32]
} ilm_mm_job;

// Runs several products in one pool dispatch.
void ilm_mm_run(ilm_pool *pool, const ilm_mm_job *jobs, int n_jobs);
// The kernel W gets under activation mode act (ilm_acts, simd/types.h): ILM_ACT_Q8 (mm_q8),
// ILM_ACT_FA (mm_fa, when the active set has one) or ILM_ACT_F32 (mm_f32).
int ilm_matmul_kind(int act, const ilm_weight *w);
// Does W take Q8 activations? (ilm_matmul_kind == ILM_ACT_Q8: Q4_0/Q8_0 in the Q8 mode.)
bool ilm_matmul_uses_q8(int act, const ilm_weight *w);
// Quantizes n rows of K activations (row stride ldx) into dst (row stride K/32 blocks).
void ilm_quantize_rows(const float *x, int n, int K, int ldx, ilm_q8a *dst);
// Bytes of activation scratch for n rows of K (every mode: Q8 or bf16 rows).
size_t ilm_act_scratch_bytes(int n, int K);
// Puts n rows of x (K wide) into scratch in the form kind's kernel reads (Q8 rows, the set's
// bf16 rows, or nothing for f32), on the calling thread.
void ilm_prepare_rows(int kind, const float *x, int n, int K, void *scratch);
// The job for rows [row0, row0 + n) of x (K = W's input width) whose prepared form
// ilm_prepare_rows put in scratch (rows counted from x's first row).
ilm_mm_job ilm_mm_job_for(int kind, const ilm_weight *w, const float *x, const void *scratch, int row0, int n,
                          float *y, int ldy);
// y = W·x for n rows of x (stride K). scratch: ilm_act_scratch_bytes(n, K).
void ilm_matmul(ilm_pool *pool, int act, void *scratch, const ilm_weight *w, const float *x, int n, float *y,
                int ldy);
// Several weights with the same input width: one preparation, one dispatch per 8 weights
// (any nw >= 0; every output is the same as ilm_matmul's). x_quantized: the caller already
// put x's Q8 rows in scratch (then only the dispatch is left).
void ilm_matmul_shared(ilm_pool *pool, int act, void *scratch, const ilm_weight *const *ws, float *const *ys,
                       const int *ldys, int nw, const float *x, bool x_quantized, int n);
