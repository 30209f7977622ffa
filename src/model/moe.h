// moe.h — the mixture-of-experts feed-forward block of 26B-A4B (docs/gemma4.md §2.5), for a
// batch of token rows. forward.c runs it in place of the dense MLP on every layer of an MoE
// model; it owns the router and expert scratch and borrows the pass's row buffers.
#pragma once
#include <stdbool.h>

#include "model/model.h"
#include "runtime/threadpool.h"

typedef struct ilm_moe ilm_moe;

// Buffers the block borrows from the pass (forward.c), each for up to B rows.
typedef struct {
    ilm_pool *pool;
    int act;            // activation mode (ilm_acts)
    ilm_q8a *qa;        // prepared activations (Q8 or bf16 rows), ilm_act_scratch_bytes(B·n_expert_used, max(H, Fe))
    float *xn;          // [B][H]  norm outputs: the dense branch's and the router's input
    float *x2;          // [B][H]  the experts' input
    float *gate, *up;   // [B][F]  the dense branch's MLP
    float *sum;         // [B][H]  the weighted sum of the experts' outputs
} ilm_moe_buffers;

int ilm_moe_create(ilm_moe **out, const ilm_model *m, int B, const ilm_moe_buffers *buf, ilm_err *err);
void ilm_moe_free(ilm_moe *moe);

// h[n][H] += RMSNorm(dense(h) + experts(h), post_ffw_norm) for layer ly, where h is the residual
// stream after the attention add (§2.5). Bit-exact per row whatever n is.
void ilm_moe_block(ilm_moe *moe, const ilm_layer *ly, float *h, int n);
