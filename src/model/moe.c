// moe.c — the 26B-A4B mixture-of-experts block (docs/gemma4.md §2.5): a dense GeGLU branch,
// a softmax router picking n_expert_used of n_expert experts per token (base/topk.h: ties to the
// lowest expert id), and the experts run grouped by expert, so each expert's weights are read
// once per batch. Per token the experts are summed in selection order, which keeps every row
// bit-identical however the batch is made up.
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

#include "base/topk.h"
#include "model/layer.h"
#include "runtime/matmul.h"

struct ilm_moe {
    const ilm_model *m;
    ilm_moe_buffers buf;    // borrowed from the pass
    float *router;          // [B][E] router probabilities
    int *sel;               // [B][K] chosen experts, best first
    float *selw;            // [B][K] their weights
    float *mden;            // [B][H] the dense branch
    float *gx, *gu, *gy;    // per assignment: expert input [H] (then gelu output [Fe]), gate-up [2Fe], output [H]
    int *gidx;              // [B·K] assignment -> token·K + k
    int *first, *count;     // [E] per expert: its first assignment, its number of tokens
    ilm_mm_job *jobs;       // [E] one product per used expert
};

int ilm_moe_create(ilm_moe **out, const ilm_model *m, int B, const ilm_moe_buffers *buf, ilm_err *err) {
    ilm_moe *moe = ilm_calloc(1, sizeof *moe, err);
    if (!moe) return -1;
    moe->m = m;
    moe->buf = *buf;
    const size_t rows = (size_t)B * (size_t)m->n_expert_used, H = (size_t)m->n_embd, Fe = (size_t)m->n_ff_exp;
    const size_t E = (size_t)m->n_expert, f4 = sizeof(float);
    moe->router = ilm_calloc((size_t)B * E, f4, err);
    moe->sel = moe->router ? ilm_calloc(rows, sizeof(int), err) : NULL;
    moe->selw = moe->sel ? ilm_calloc(rows, f4, err) : NULL;
    moe->mden = moe->selw ? ilm_calloc((size_t)B * H, f4, err) : NULL;
    moe->gx = moe->mden ? ilm_calloc(rows * (H > Fe ? H : Fe), f4, err) : NULL;
    moe->gu = moe->gx ? ilm_calloc(rows * 2 * Fe, f4, err) : NULL;
    moe->gy = moe->gu ? ilm_calloc(rows * H, f4, err) : NULL;
    moe->gidx = moe->gy ? ilm_calloc(rows, sizeof(int), err) : NULL;
    moe->first = moe->gidx ? ilm_calloc(E, sizeof(int), err) : NULL;
    moe->count = moe->first ? ilm_calloc(E, sizeof(int), err) : NULL;
    moe->jobs = moe->count ? ilm_calloc(E, sizeof(ilm_mm_job), err) : NULL;
    if (!moe->jobs) {
        ilm_moe_free(moe);
        return -1;
    }
    *out = moe;
    return 0;
}

void ilm_moe_free(ilm_moe *moe) {
    if (!moe) return;
    void *ps[] = {moe->router, moe->sel, moe->selw, moe->mden, moe->gx, moe->gu, moe->gy, moe->gidx,
                  moe->first, moe->count, moe->jobs};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    free(moe);
}

// mden[n][H] = RMSNorm(W_down · (gelu(W_gate·xn) ⊙ (W_up·xn)), post_ffw_norm_1), xn = RMSNorm(h, ffn_norm)
static void dense_branch(ilm_moe *moe, const ilm_layer *ly, const float *h, int n) {
    const ilm_moe_buffers *b = &moe->buf;
    const ilm_model *m = moe->m;
    const int H = m->n_embd, F = ly->ffn_gate.m.rows;
    for (int i = 0; i < n; i++) ilm_k->rmsnorm(b->xn + (size_t)i * H, h + (size_t)i * H, ly->ffn_norm, H, m->eps);
    const ilm_weight *gu[2] = {&ly->ffn_gate, &ly->ffn_up};
    float *ys[2] = {b->gate, b->up};
    int ld[2] = {F, F};
    ilm_matmul_shared(b->pool, b->act, b->qa, gu, ys, ld, 2, b->xn, false, n);
    for (int i = 0; i < n; i++) ilm_k->geglu(b->gate + (size_t)i * F, b->gate + (size_t)i * F, b->up + (size_t)i * F, F);
    const ilm_weight *down = &ly->ffn_down;
    ilm_matmul_shared(b->pool, b->act, b->qa, &down, &moe->mden, &H, 1, b->gate, false, n);
    for (int i = 0; i < n; i++)
        ilm_k->rmsnorm(moe->mden + (size_t)i * H, moe->mden + (size_t)i * H, ly->post_ffw_norm_1, H, m->eps);
}

// z = W_r · (rms(h) ⊙ router_scale); p = softmax(z); sel = top-k of p (best first);
// w_k = p[sel_k] / Σ p[sel] · per_expert_scale[sel_k]
static void route(ilm_moe *moe, const ilm_layer *ly, const float *h, int n) {
    const ilm_moe_buffers *b = &moe->buf;
    const ilm_model *m = moe->m;
    const int H = m->n_embd, E = m->n_expert, K = m->n_expert_used;
    for (int i = 0; i < n; i++) {
        float *r = b->xn + (size_t)i * H;
        ilm_k->rmsnorm(r, h + (size_t)i * H, NULL, H, m->eps);
        for (int d = 0; d < H; d++) r[d] *= ly->router_scale[d];  // 1/sqrt(H) folded in at load
    }
    const int kind = ilm_matmul_kind(b->act, &ly->router);
    ilm_prepare_rows(kind, b->xn, n, H, b->qa);
    const ilm_mm_job rj = ilm_mm_job_for(kind, &ly->router, b->xn, b->qa, 0, n, moe->router, E);
    ilm_mm_run(b->pool, &rj, 1);
    for (int i = 0; i < n; i++) {
        float *z = moe->router + (size_t)i * E;
        ilm_k->softmax(z, E);
        int *sel = moe->sel + (size_t)i * K;
        float *w = moe->selw + (size_t)i * K, sum = 0;
        ilm_topk(z, E, K, sel);  // best first: the order the experts are summed in
        for (int k = 0; k < K; k++) {
            w[k] = z[sel[k]];
            sum += z[sel[k]];
        }
        for (int k = 0; k < K; k++) {
            w[k] /= sum;
            if (ly->expert_scale) w[k] *= ly->expert_scale[sel[k]];
        }
    }
}

// One product per used expert over its gathered rows x[first[e]..][K_in], in one dispatch.
static void run_experts(ilm_moe *moe, const ilm_weight *ws, const float *x, int n_assign, int K_in, float *y,
                        int ldy) {
    const ilm_moe_buffers *b = &moe->buf;
    const int kind = ilm_matmul_kind(b->act, &ws[0]);  // every expert has the same type
    ilm_prepare_rows(kind, x, n_assign, K_in, b->qa);
    int nj = 0;
    for (int e = 0; e < moe->m->n_expert; e++)
        if (moe->count[e])
            moe->jobs[nj++] = ilm_mm_job_for(kind, &ws[e], x, b->qa, moe->first[e], moe->count[e],
                                             y + (size_t)moe->first[e] * ldy, ldy);
    ilm_mm_run(b->pool, moe->jobs, nj);
}

void ilm_moe_block(ilm_moe *moe, const ilm_layer *ly, float *h, int n) {
    const ilm_moe_buffers *b = &moe->buf;
    const ilm_model *m = moe->m;
    const int H = m->n_embd, E = m->n_expert, K = m->n_expert_used, Fe = m->n_ff_exp;
    dense_branch(moe, ly, h, n);                 // mden [n][H]
    route(moe, ly, h, n);                        // sel, selw [n][K]
    // experts on x2 = RMSNorm(h, pre_ffw_norm_2), gathered by expert: gx [n_assign][H]
    float *x2 = b->x2;
    for (int i = 0; i < n; i++) ilm_k->rmsnorm(x2 + (size_t)i * H, h + (size_t)i * H, ly->pre_ffw_norm_2, H, m->eps);
    int n_assign = 0;
    for (int e = 0; e < E; e++) {
        moe->first[e] = n_assign;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                if (moe->sel[(size_t)i * K + k] == e) {
                    moe->gidx[n_assign] = i * K + k;
                    memcpy(moe->gx + (size_t)n_assign * H, x2 + (size_t)i * H, sizeof(float) * (size_t)H);
                    n_assign++;
                }
        moe->count[e] = n_assign - moe->first[e];
    }
    // gu = W_gate_up[e] · x2 [n_assign][2Fe]; gelu(gate) ⊙ up into gx [n_assign][Fe]; gy = W_down[e] · gx [n_assign][H]
    run_experts(moe, ly->exp_gate_up, moe->gx, n_assign, H, moe->gu, 2 * Fe);
    for (int a = 0; a < n_assign; a++) {
        float *gu = moe->gu + (size_t)a * 2 * Fe;
        ilm_k->geglu(moe->gx + (size_t)a * Fe, gu, gu + Fe, Fe);
    }
    run_experts(moe, ly->exp_down, moe->gx, n_assign, Fe, moe->gy, H);
    // h += RMSNorm(mden + RMSNorm(Σ_k w_k y_k, post_ffw_norm_2), post_ffw_norm), summed in selection order
    int *where = moe->sel;  // reuse: assignment index per (token, k)
    for (int a = 0; a < n_assign; a++) where[moe->gidx[a]] = a;
    for (int i = 0; i < n; i++) {
        float *sum = b->sum + (size_t)i * H;
        memset(sum, 0, sizeof(float) * (size_t)H);
        for (int k = 0; k < K; k++) {
            const float *y = moe->gy + (size_t)where[i * K + k] * H;
            float w = moe->selw[(size_t)i * K + k];
            for (int d = 0; d < H; d++) sum[d] += w * y[d];
        }
        ilm_k->rmsnorm(sum, sum, ly->post_ffw_norm_2, H, m->eps);
        float *md = moe->mden + (size_t)i * H;
        for (int d = 0; d < H; d++) md[d] += sum[d];
        ilm_add_normed(h + (size_t)i * H, md, ly->post_ffw_norm, H, m->eps);
    }
}
