// matmul.h — matrix products on the thread pool: each thread multiplies its own slice of
// output rows (the same slice every call), with the kernel the weight type needs, reading
// the weight copy placed on its node (placement.h).
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
    const float *x;       // f32 activations [n][K] (used when xq == NULL)
    const ilm_q8a *xq;    // quantized activations [n][K/32]
    int n;
    float *y;             // y[c*ldy + r]
    int ldy;
} ilm_mm_job;

// Runs several products in one pool dispatch.
void ilm_mm_run(ilm_pool *pool, const ilm_mm_job *jobs, int n_jobs);
// Does W take Q8 activations? (Types whose kernels take ILM_ACT_Q8, simd/types.c: Q4_0/Q8_0,
// unless act_f32, the W4A16 mode.)
bool ilm_matmul_uses_q8(bool act_f32, const ilm_weight *w);
// Quantizes n rows of K activations (row stride ldx) into dst (row stride K/32 blocks).
void ilm_quantize_rows(const float *x, int n, int K, int ldx, ilm_q8a *dst);
// y = W·x for n rows of x (stride K). qscratch: n*K/32 blocks.
void ilm_matmul(ilm_pool *pool, bool act_f32, ilm_q8a *qscratch, const ilm_weight *w, const float *x, int n, float *y,
                int ldy);
// Several weights with the same input width: one quantization, one dispatch per 8 weights
// (any nw >= 0; every output is the same as ilm_matmul's). x_quantized: the caller already
// put x's Q8 rows in qscratch (then only the dispatch is left).
void ilm_matmul_shared(ilm_pool *pool, bool act_f32, ilm_q8a *qscratch, const ilm_weight *const *ws, float *const *ys,
                       const int *ldys, int nw, const float *x, bool x_quantized, int n);
