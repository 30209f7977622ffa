// forward.c — the Gemma 4 verifier forward pass, batched over tokens (docs/gemma4.md §2).
//
// Layout of the work: matrix products and attention run on the thread pool (rows split per
// thread, the same slice every call); the cheap per-token vector work (norms, RoPE, residual
// adds) runs on the calling thread. Every per-token computation depends only on that
// token's inputs and its sequence's cache, so batched and one-by-one passes agree bit for bit.
#include "model/forward.h"
#include "base/topk.h"
#include "runtime/matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ilm_fwd {
    const ilm_model *m;
    ilm_pool *pool;
    ilm_fwd_opts opt;
    int B;                          // max tokens per pass
    int max_q, max_kv, max_ff, max_k;
    // per-token scratch, [B][...]
    float *h;                       // residual stream        [B][H]
    float *xn;                      // normed input           [B][max(H, ...)]
    float *x0;                      // scaled embeddings      [B][H] (PLE)
    float *q, *k, *v;               // projections            [B][max_q] / [B][max_kv]
    float *att;                     // attention output       [B][max_q]
    float *o;                       // branch output          [B][H]
    float *gate, *up;               // MLP                    [B][max_ff]
    float *ple;                     // per-layer inputs       [B][L*P]
    float *ple_ctx;                 // their context part     [B][L*P]
    float *cs_swa, *cs_full;        // RoPE cos/sin           [B][n_rot]
    ilm_q8a *qa;                    // quantized activations  [B*topk][max_k/32]
    float *scores;                  // attention scratch      [nth][max_ctx]
    // MoE
    float *router;                  // [B][E]
    int *sel;                       // [B][topk] chosen experts
    float *selw;                    // [B][topk] their weights
    float *mden;                    // [B][H] dense branch
    float *gx, *gu, *gy;            // gathered expert inputs / gate-up / outputs [B*topk][...]
    int *gidx;                      // [B*topk] assignment -> (token, k)
    ilm_mm_job *moe_jobs;           // [E] one product per used expert
    // final rows
    float *yrows;                   // [B][H]
};

// --- small helpers ----------------------------------------------------------------------------

static void *zalloc(size_t n, ilm_err *err) { return ilm_calloc(1, n ? n : 1, err); }

void ilm_fwd_embed(const ilm_model *m, int32_t tok, float *out) {
    const ilm_weight *e = &m->tok_embd;
    size_t rb = ilm_row_bytes(e->m.type, e->m.cols);
    ilm_k->dequant_row(e->m.type, (const char *)e->file_data + (size_t)tok * rb, out, e->m.cols);
    for (int i = 0; i < e->m.cols; i++) out[i] *= m->emb_scale;
}

// cs[2i] = cos(θ_i), cs[2i+1] = sin(θ_i), θ_i = pos · base^(−2i/n_rot) / freq_div[i]  (§2.6)
void ilm_rope_table(float *cs, int pos, int n_rot, float base, const float *freq_div) {
    for (int i = 0; i < n_rot / 2; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        if (freq_div) theta /= (double)freq_div[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

// One query head against the cached keys lo..hi of a layer (lo from the sliding window).
void ilm_attend_head(const ilm_kv *kv, int layer, int kv_head, int hd, bool sliding, int window, int pos, int hi,
                     const float *q, float *scores, float *out) {
    const ilm_kv_layer *L = &kv->layer[layer];
    int lo = sliding ? pos - window + 1 : 0;
    if (lo < 0) lo = 0;
    memset(out, 0, sizeof(float) * (size_t)hd);
    if (hi < lo) return;
    int n = hi - lo + 1;
    size_t es = ilm_kv_elem_size(kv), off = (size_t)kv_head * (size_t)hd * es;
    int s0 = lo % L->slots;
    int first = n < L->slots - s0 ? n : L->slots - s0;  // a ring may wrap once
    ilm_k->attn_scores(q, L->k + (size_t)s0 * L->row_bytes + off, kv->type, L->row_bytes, first, hd, scores);
    if (first < n) ilm_k->attn_scores(q, L->k + off, kv->type, L->row_bytes, n - first, hd, scores + first);
    ilm_k->softmax(scores, n);
    ilm_k->attn_values(scores, L->v + (size_t)s0 * L->row_bytes + off, kv->type, L->row_bytes, first, hd, out);
    if (first < n) ilm_k->attn_values(scores + first, L->v + off, kv->type, L->row_bytes, n - first, hd, out);
}

// --- matrix products (matmul.c) ----------------------------------------------------------------

// y = W·x for n rows of x (stride K); picks the q8 or f32 kernel for the weight type.
static void matmul(ilm_fwd *f, const ilm_weight *w, const float *x, int n, float *y, int ldy) {
    ilm_matmul(f->pool, f->opt.act_f32, f->qa, w, x, n, y, ldy);
}

// Several matrices sharing one input (Q/K/V, gate/up): one quantization, one dispatch.
// x_quantized: the stage that produced x already put its Q8 rows in f->qa (tok_task.quant).
static void matmul_shared(ilm_fwd *f, const ilm_weight *const *ws, float *const *ys, const int *ldys, int nw,
                          const float *x, bool x_quantized, int n) {
    ilm_matmul_shared(f->pool, f->opt.act_f32, f->qa, ws, ys, ldys, nw, x, x_quantized, n);
}

static bool q8_path(const ilm_fwd *f, const ilm_weight *w) { return ilm_matmul_uses_q8(f->opt.act_f32, w); }

// Whether every one of ws takes Q8 activations (so one quantized input serves them all).
static bool all_q8(const ilm_fwd *f, const ilm_weight *const *ws, int nw) {
    bool q = true;
    for (int i = 0; i < nw; i++) q &= q8_path(f, ws[i]);
    return q;
}

// --- attention on the pool --------------------------------------------------------------------

typedef struct {
    ilm_fwd *f;
    ilm_kv **kvs;
    const ilm_batch *b;
    int layer, n;
} attn_task;

static void attn_task_fn(void *ctx, int ith, int nth) {
    const attn_task *t = ctx;
    const ilm_model *m = t->f->m;
    const ilm_layer *ly = &m->layers[t->layer];
    const int nh = ly->n_head, hd = ly->hd, group = nh / ly->n_kv_head;
    const int pairs = t->n * nh;
    int p0 = (int)((long)pairs * ith / nth), p1 = (int)((long)pairs * (ith + 1) / nth);
    float *scores = t->f->scores + (size_t)ith * (size_t)t->f->opt.max_ctx;
    for (int p = p0; p < p1; p++) {
        int i = p / nh, h = p % nh;
        const ilm_kv *kv = t->kvs[t->b->seq ? t->b->seq[i] : 0];
        int pos = t->b->pos[i];
        ilm_attend_head(kv, ly->kv_src, h / group, hd, ly->sliding, m->window, pos, pos,
                        t->f->q + (size_t)i * t->f->max_q + (size_t)h * hd, scores,
                        t->f->att + (size_t)i * (size_t)(nh * hd) + (size_t)h * hd);
    }
}

// --- construction -----------------------------------------------------------------------------

int ilm_fwd_create(ilm_fwd **out, const ilm_model *m, ilm_pool *pool, const ilm_fwd_opts *opts, ilm_err *err) {
    ilm_fwd *f = calloc(1, sizeof *f);
    if (!f) return ilm_fail(err, "out of memory");
    f->m = m;
    f->pool = pool;
    f->opt = *opts;
    if (f->opt.max_batch <= 0) f->opt.max_batch = 512;
    if (f->opt.max_ctx <= 0) f->opt.max_ctx = 8192;
    f->B = f->opt.max_batch;
    const int H = m->n_embd, L = m->n_layer;
    f->max_k = H;
    for (int i = 0; i < L; i++) {
        const ilm_layer *ly = &m->layers[i];
        int q = ly->n_head * ly->hd, kvw = ly->n_kv_head * ly->hd;
        if (q > f->max_q) f->max_q = q;
        if (kvw > f->max_kv) f->max_kv = kvw;
        if (ly->n_ff > f->max_ff) f->max_ff = ly->n_ff;
    }
    if (2 * m->n_ff_exp > f->max_ff) f->max_ff = 2 * m->n_ff_exp;
    if (m->ple_dim > f->max_ff) f->max_ff = m->ple_dim;
    if (f->max_q > f->max_k) f->max_k = f->max_q;
    if (f->max_ff > f->max_k) f->max_k = f->max_ff;
    const size_t B = (size_t)f->B, topk = m->n_expert_used ? (size_t)m->n_expert_used : 1;
    const int nth = ilm_pool_size(pool);
    f->h = zalloc(B * H * 4, err);
    f->xn = zalloc(B * (size_t)f->max_k * 4, err);
    f->x0 = zalloc(B * H * 4, err);
    f->q = zalloc(B * (size_t)f->max_q * 4, err);
    f->k = zalloc(B * (size_t)f->max_kv * 4, err);
    f->v = zalloc(B * (size_t)f->max_kv * 4, err);
    f->att = zalloc(B * (size_t)f->max_q * 4, err);
    f->o = zalloc(B * H * 4, err);
    f->gate = zalloc(B * (size_t)f->max_ff * 4, err);
    f->up = zalloc(B * (size_t)f->max_ff * 4, err);
    f->ple = zalloc(B * (size_t)(m->ple_dim * L) * 4, err);
    f->ple_ctx = zalloc(B * (size_t)(m->ple_dim * L) * 4, err);
    f->cs_swa = zalloc(B * (size_t)m->n_rot_swa * 4, err);
    f->cs_full = zalloc(B * (size_t)m->n_rot_full * 4, err);
    f->qa = zalloc(B * topk * (size_t)(f->max_k / ILM_QK + 1) * sizeof(ilm_q8a), err);
    f->scores = zalloc((size_t)nth * (size_t)f->opt.max_ctx * 4, err);
    f->yrows = zalloc(B * H * 4, err);
    bool ok = f->h && f->xn && f->x0 && f->q && f->k && f->v && f->att && f->o && f->gate && f->up && f->ple && f->ple_ctx &&
              f->cs_swa && f->cs_full && f->qa && f->scores && f->yrows;
    if (ok && m->n_expert) {
        f->router = zalloc(B * (size_t)m->n_expert * 4, err);
        f->sel = zalloc(B * topk * sizeof(int), err);
        f->selw = zalloc(B * topk * 4, err);
        f->mden = zalloc(B * H * 4, err);
        f->gx = zalloc(B * topk * (size_t)(H > m->n_ff_exp ? H : m->n_ff_exp) * 4, err);
        f->gu = zalloc(B * topk * 2 * (size_t)m->n_ff_exp * 4, err);
        f->gy = zalloc(B * topk * H * 4, err);
        f->gidx = zalloc(B * topk * sizeof(int), err);
        f->moe_jobs = zalloc((size_t)m->n_expert * sizeof(ilm_mm_job), err);
        ok = f->router && f->sel && f->selw && f->mden && f->gx && f->gu && f->gy && f->gidx && f->moe_jobs;
    }
    if (!ok) {
        ilm_fwd_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

void ilm_fwd_free(ilm_fwd *f) {
    if (!f) return;
    void *ps[] = {f->h, f->xn, f->x0, f->q, f->k, f->v, f->att, f->o, f->gate, f->up, f->ple, f->ple_ctx, f->cs_swa,
                  f->cs_full, f->qa, f->scores, f->yrows, f->router, f->sel, f->selw, f->mden, f->gx, f->gu,
                  f->gy, f->gidx, f->moe_jobs};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    free(f);
}

// --- per-token vector work, split over the pool by tokens ------------------------------------

enum {
    ST_ATTN_NORM, ST_QKV, ST_POST_ATTN, ST_POST_ATTN_FFN_NORM, ST_GEGLU, ST_POST_FFW, ST_PLE_GATE,
    ST_PLE_POST, ST_LAYER_END
};

typedef struct {
    ilm_fwd *f;
    ilm_kv **kvs;
    const ilm_batch *b;
    const ilm_layer *ly;
    int layer, n, stage;
    bool quant;  // also quantize the stage's output row into f->qa (the next matmul's input)
    bool end;    // the layer's last stage: then h *= layer_output_scale, xn = RMSNorm(h, next's attn_norm)
    const ilm_layer *next;  // the next layer (NULL after the last)
} tok_task;

// Residual add of a normed branch: h += RMSNorm(o, w).
static void add_normed(float *h, float *o, const float *w, int H, float eps) {
    ilm_k->rmsnorm(o, o, w, H, eps);
    for (int d = 0; d < H; d++) h[d] += o[d];
}

static void tok_stage(const tok_task *t, int i) {
    ilm_fwd *f = t->f;
    const ilm_model *m = f->m;
    const ilm_layer *ly = t->ly;
    const int H = m->n_embd;
    float *h = f->h + (size_t)i * H, *o = f->o + (size_t)i * H;
    switch (t->stage) {
    case ST_ATTN_NORM: ilm_k->rmsnorm(f->xn + (size_t)i * H, h, ly->attn_norm, H, m->eps); break;
    case ST_POST_ATTN: add_normed(h, o, ly->post_attn_norm, H, m->eps); break;
    case ST_POST_ATTN_FFN_NORM:  // the two in one pass over the tokens
        add_normed(h, o, ly->post_attn_norm, H, m->eps);
        ilm_k->rmsnorm(f->xn + (size_t)i * H, h, ly->ffn_norm, H, m->eps);
        break;
    case ST_POST_FFW: add_normed(h, o, ly->post_ffw_norm, H, m->eps); break;
    case ST_PLE_POST: add_normed(h, o, ly->ple_post_norm, H, m->eps); break;
    case ST_LAYER_END: break;  // only the end-of-layer work below
    case ST_GEGLU: {
        float *g = f->gate + (size_t)i * ly->n_ff;
        ilm_k->geglu(g, g, f->up + (size_t)i * ly->n_ff, ly->n_ff);
        break;
    }
    case ST_PLE_GATE: {
        const int P = m->ple_dim;
        float *g = f->gate + (size_t)i * P;
        ilm_k->geglu(g, g, f->ple + (size_t)i * P * m->n_layer + (size_t)t->layer * P, P);
        break;
    }
    case ST_QKV: {
        const int hd = ly->hd, nkv = ly->n_kv_head, kvw = nkv * hd;
        const int n_rot = ly->sliding ? m->n_rot_swa : m->n_rot_full;
        const float *cs = (ly->sliding ? f->cs_swa : f->cs_full) + (size_t)i * n_rot;
        float *q = f->q + (size_t)i * f->max_q;
        for (int hh = 0; hh < ly->n_head; hh++) {
            ilm_k->rmsnorm(q + hh * hd, q + hh * hd, ly->q_norm, hd, m->eps);
            ilm_k->rope_neox(q + hh * hd, n_rot, cs);
        }
        if (!ly->owns_kv) break;
        float *k = f->k + (size_t)i * f->max_kv, *v = f->v + (size_t)i * f->max_kv;
        if (!ly->wv.t) memcpy(v, k, sizeof(float) * (size_t)kvw);  // K = V: raw K before its norm
        for (int g = 0; g < nkv; g++) {
            ilm_k->rmsnorm(v + g * hd, v + g * hd, NULL, hd, m->eps);
            ilm_k->rmsnorm(k + g * hd, k + g * hd, ly->k_norm, hd, m->eps);
            ilm_k->rope_neox(k + g * hd, n_rot, cs);
        }
        ilm_kv *kv = t->kvs[t->b->seq ? t->b->seq[i] : 0];
        ilm_kv_layer *KL = &kv->layer[t->layer];
        size_t slot = (size_t)(t->b->pos[i] % KL->slots);  // distinct per token of a sequence
        if (kv->type == ILM_TYPE_F16) {
            ilm_k->f32_to_f16(k, (uint16_t *)(KL->k + slot * KL->row_bytes), kvw);
            ilm_k->f32_to_f16(v, (uint16_t *)(KL->v + slot * KL->row_bytes), kvw);
        } else {
            memcpy(KL->k + slot * KL->row_bytes, k, sizeof(float) * (size_t)kvw);
            memcpy(KL->v + slot * KL->row_bytes, v, sizeof(float) * (size_t)kvw);
        }
        break;
    }
    }
    if (t->end) {
        if (ly->out_scale != 1.0f)
            for (int d = 0; d < H; d++) h[d] *= ly->out_scale;
        if (t->next) ilm_k->rmsnorm(f->xn + (size_t)i * H, h, t->next->attn_norm, H, m->eps);
    }
    if (t->quant) {  // the norm stages: xn rows of H; ST_GEGLU: gate rows of n_ff
        const int K = t->stage == ST_GEGLU ? ly->n_ff : H;
        const float *row = (t->stage == ST_GEGLU ? f->gate : f->xn) + (size_t)i * K;
        ilm_quantize_rows(row, 1, K, K, f->qa + (size_t)i * (K / ILM_QK));
    }
}

static void tok_task_fn(void *ctx, int ith, int nth) {
    const tok_task *t = ctx;
    int i0 = (int)((long)t->n * ith / nth), i1 = (int)((long)t->n * (ith + 1) / nth);
    for (int i = i0; i < i1; i++) tok_stage(t, i);
}

// One stage for every token. One token (decode) is cheaper inline than a pool dispatch
// (~1 µs); from 2 tokens on they are split over the threads (speculative verification of
// 4-5 tokens on pyc80m, 2 threads: -5% against inline up to 7 tokens).
#define ILM_TOKENS_PER_DISPATCH 2
static void run_stage(tok_task *t, int stage, bool quant, bool end) {
    t->stage = stage;
    t->quant = quant;
    t->end = end;
    if (t->n < ILM_TOKENS_PER_DISPATCH)
        for (int i = 0; i < t->n; i++) tok_stage(t, i);
    else ilm_pool_run(t->f->pool, tok_task_fn, t);
}

static void run_tokens(tok_task *t, int stage) { run_stage(t, stage, false, false); }

// A stage whose output feeds a matmul, its rows quantized on the way when that matmul takes
// Q8 activations (saves the matmul's own quantization dispatch). Returns whether it did.
static bool run_tokens_quant(tok_task *t, int stage, const ilm_weight *const *next, int n_next) {
    bool q = all_q8(t->f, next, n_next);
    run_stage(t, stage, q, false);
    return q;
}

// The matrices that read a layer's attention input xn: Q, and K, V where the layer owns them.
static int qkv_weights(const ilm_layer *ly, const ilm_weight **ws) {
    ws[0] = &ly->wq, ws[1] = &ly->wk, ws[2] = &ly->wv;
    return ly->owns_kv ? (ly->wv.t ? 3 : 2) : 1;
}

// The layer's last per-token stage, which also scales the residual and computes (and
// quantizes) the next layer's attention input: one pass over the tokens instead of three.
// Returns whether xn was quantized.
static bool run_layer_end(tok_task *t, int stage, const ilm_layer *next) {
    const ilm_weight *ws[3];
    bool q = next && all_q8(t->f, ws, qkv_weights(next, ws));
    t->next = next;
    run_stage(t, stage, q, true);
    return q;
}

// --- blocks of a layer ------------------------------------------------------------------------

// Dense GeGLU MLP on n rows of x (stride ldx, width H) -> out [n][H]. §2.1
// x_quantized: x is also in f->qa already (run_tokens_quant).
static void mlp(ilm_fwd *f, tok_task *tt, const ilm_weight *gate, const ilm_weight *up, const ilm_weight *down,
                const float *x, bool x_quantized, int n, float *out) {
    const int F = gate->m.rows, H = f->m->n_embd;
    const ilm_weight *ws[2] = {gate, up};
    float *ys[2] = {f->gate, f->up};
    int ld[2] = {F, F};
    matmul_shared(f, ws, ys, ld, 2, x, x_quantized, n);
    bool gate_quantized = false;  // gate = gelu(gate) ⊙ up, quantized for down when it can be
    if (tt) gate_quantized = run_tokens_quant(tt, ST_GEGLU, &down, 1);
    else
        for (int i = 0; i < n; i++) ilm_k->geglu(f->gate + (size_t)i * F, f->gate + (size_t)i * F, f->up + (size_t)i * F, F);
    matmul_shared(f, &down, &out, &H, 1, f->gate, gate_quantized, n);
}

// 26B-A4B mixture of experts (§2.5): h is the residual after attention; adds the block's
// output to h.
static void moe_block(ilm_fwd *f, const ilm_layer *ly, int n) {
    const ilm_model *m = f->m;
    const int H = m->n_embd, E = m->n_expert, K = m->n_expert_used, Fe = m->n_ff_exp;
    // dense branch: m = RMSNorm(mlp(RMSNorm(h, ffn_norm)), post_ffw_norm_1)
    for (int i = 0; i < n; i++) ilm_k->rmsnorm(f->xn + (size_t)i * H, f->h + (size_t)i * H, ly->ffn_norm, H, m->eps);
    mlp(f, NULL, &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down, f->xn, false, n, f->mden);
    for (int i = 0; i < n; i++)
        ilm_k->rmsnorm(f->mden + (size_t)i * H, f->mden + (size_t)i * H, ly->post_ffw_norm_1, H, m->eps);
    // router: z = W_r · (rms(h) ⊙ scale/sqrt(H)); softmax; top-k; renormalise; × per-expert scale
    for (int i = 0; i < n; i++) {
        float *r = f->xn + (size_t)i * H;
        ilm_k->rmsnorm(r, f->h + (size_t)i * H, NULL, H, m->eps);
        for (int d = 0; d < H; d++) r[d] *= ly->router_scale[d];
    }
    ilm_mm_job rj = {&ly->router, f->xn, NULL, n, f->router, E};
    if (q8_path(f, &ly->router)) {
        ilm_quantize_rows(f->xn, n, H, H, f->qa);
        rj.xq = f->qa;
    }
    ilm_mm_run(f->pool, &rj, 1);
    for (int i = 0; i < n; i++) {
        float *z = f->router + (size_t)i * E;
        ilm_k->softmax(z, E);
        int *sel = f->sel + (size_t)i * K;
        float *w = f->selw + (size_t)i * K, sum = 0;
        ilm_topk(z, E, K, sel);  // best first, ties to the lowest expert id
        for (int k = 0; k < K; k++) {
            w[k] = z[sel[k]];
            sum += z[sel[k]];
        }
        for (int k = 0; k < K; k++) {
            w[k] /= sum;
            if (ly->expert_scale) w[k] *= ly->expert_scale[sel[k]];
        }
    }
    // experts on x2 = RMSNorm(h, pre_ffw_norm_2), grouped by expert so each weight is read once
    float *x2 = f->o;  // reuse as [n][H]
    for (int i = 0; i < n; i++) ilm_k->rmsnorm(x2 + (size_t)i * H, f->h + (size_t)i * H, ly->pre_ffw_norm_2, H, m->eps);
    int n_assign = 0;
    int first[4096], count[4096];  // per expert: first assignment index, number of tokens
    for (int e = 0; e < E; e++) {
        first[e] = n_assign;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                if (f->sel[(size_t)i * K + k] == e) {
                    f->gidx[n_assign] = i * K + k;
                    memcpy(f->gx + (size_t)n_assign * H, x2 + (size_t)i * H, sizeof(float) * (size_t)H);
                    n_assign++;
                }
        count[e] = n_assign - first[e];
    }
    // gate_up for every used expert in one dispatch, then down in another
    ilm_mm_job *jobs = f->moe_jobs;
    int nj = 0;
    bool q8 = q8_path(f, &ly->exp_gate_up[0]);
    if (q8) ilm_quantize_rows(f->gx, n_assign, H, H, f->qa);
    for (int e = 0; e < E; e++)
        if (count[e])
            jobs[nj++] = (ilm_mm_job){&ly->exp_gate_up[e], f->gx + (size_t)first[e] * H,
                                  q8 ? f->qa + (size_t)first[e] * (H / ILM_QK) : NULL, count[e],
                                  f->gu + (size_t)first[e] * 2 * Fe, 2 * Fe};
    ilm_mm_run(f->pool, jobs, nj);
    for (int a = 0; a < n_assign; a++) {
        float *gu = f->gu + (size_t)a * 2 * Fe;
        ilm_k->geglu(f->gx + (size_t)a * Fe, gu, gu + Fe, Fe);  // gx reused as [a][Fe]
    }
    q8 = q8_path(f, &ly->exp_down[0]);
    if (q8) ilm_quantize_rows(f->gx, n_assign, Fe, Fe, f->qa);
    nj = 0;
    for (int e = 0; e < E; e++)
        if (count[e])
            jobs[nj++] = (ilm_mm_job){&ly->exp_down[e], f->gx + (size_t)first[e] * Fe,
                                  q8 ? f->qa + (size_t)first[e] * (Fe / ILM_QK) : NULL, count[e],
                                  f->gy + (size_t)first[e] * H, H};
    ilm_mm_run(f->pool, jobs, nj);
    // combine per token in selection order (deterministic), then the two norms and the residual
    int *where = f->sel;  // reuse: assignment index per (token, k)
    for (int a = 0; a < n_assign; a++) where[f->gidx[a]] = a;
    for (int i = 0; i < n; i++) {
        float *tmp = f->yrows + (size_t)i * H;
        memset(tmp, 0, sizeof(float) * (size_t)H);
        for (int k = 0; k < K; k++) {
            const float *y = f->gy + (size_t)where[i * K + k] * H;
            float w = f->selw[(size_t)i * K + k];
            for (int d = 0; d < H; d++) tmp[d] += w * y[d];
        }
        ilm_k->rmsnorm(tmp, tmp, ly->post_ffw_norm_2, H, m->eps);
        float *md = f->mden + (size_t)i * H;
        for (int d = 0; d < H; d++) md[d] += tmp[d];
        ilm_k->rmsnorm(md, md, ly->post_ffw_norm, H, m->eps);
        float *h = f->h + (size_t)i * H;
        for (int d = 0; d < H; d++) h[d] += md[d];
    }
}

// Per-layer input embeddings for the batch (§2.4): f->ple[i][l*P..] for every layer.
static void ple_prepare(ilm_fwd *f, const ilm_batch *b, int n) {
    const ilm_model *m = f->m;
    const int P = m->ple_dim, L = m->n_layer, H = m->n_embd, PL = P * L;
    float *ctx = f->ple_ctx;  // [n][PL]
    matmul(f, &m->ple_model_proj, f->x0, n, ctx, PL);
    const ilm_weight *te = &m->ple_tok_embd;
    size_t rb = ilm_row_bytes(te->m.type, te->m.cols);
    const float s_h = 1.0f / sqrtf((float)H), s_p = sqrtf((float)P), s_2 = 1.0f / sqrtf(2.0f);
    for (int i = 0; i < n; i++) {
        float *pl = f->ple + (size_t)i * PL, *c = ctx + (size_t)i * PL;
        ilm_k->dequant_row(te->m.type, (const char *)te->file_data + (size_t)b->tokens[i] * rb, pl, PL);
        for (int l = 0; l < L; l++) {
            float *cl = c + (size_t)l * P;
            for (int d = 0; d < P; d++) cl[d] *= s_h;
            ilm_k->rmsnorm(cl, cl, m->ple_proj_norm, P, m->eps);
            float *p = pl + (size_t)l * P;
            for (int d = 0; d < P; d++) p[d] = (cl[d] + p[d] * s_p) * s_2;
        }
    }
}

// --- the pass ---------------------------------------------------------------------------------

static int forward_chunk(ilm_fwd *f, ilm_kv **kvs, const ilm_batch *b, int n) {
    const ilm_model *m = f->m;
    const int H = m->n_embd;

    // embeddings (§2.2): x0 = E[tok] · sqrt(H)
    for (int i = 0; i < n; i++) {
        ilm_fwd_embed(m, b->tokens[i], f->h + (size_t)i * H);
        if (m->ple_dim) memcpy(f->x0 + (size_t)i * H, f->h + (size_t)i * H, sizeof(float) * (size_t)H);
        ilm_rope_table(f->cs_swa + (size_t)i * m->n_rot_swa, b->pos[i], m->n_rot_swa, m->rope_base_swa, NULL);
        ilm_rope_table(f->cs_full + (size_t)i * m->n_rot_full, b->pos[i], m->n_rot_full, m->rope_base_full,
                       m->rope_freqs);
    }
    if (m->ple_dim) ple_prepare(f, b, n);

    bool xn_ready = false, xq_ready = false;  // the layer's attention input is in xn (and f->qa)
    for (int l = 0; l < m->n_layer; l++) {
        const ilm_layer *ly = &m->layers[l];
        const ilm_layer *next = l + 1 < m->n_layer ? &m->layers[l + 1] : NULL;
        tok_task tt = {f, kvs, b, ly, l, n, 0, false, false, NULL};

        // ---- attention (§2.3) ----
        const ilm_weight *ws[3];
        float *ys[3] = {f->q, f->k, f->v};
        int ld[3] = {f->max_q, f->max_kv, f->max_kv};
        const int nw = qkv_weights(ly, ws);
        if (!xn_ready) xq_ready = run_tokens_quant(&tt, ST_ATTN_NORM, ws, nw);  // xn = RMSNorm(h, attn_norm)
        matmul_shared(f, ws, ys, ld, nw, f->xn, xq_ready, n);
        run_tokens(&tt, ST_QKV);                               // norms, RoPE, K/V into the cache
        attn_task at = {f, kvs, b, l, n};
        ilm_pool_run(f->pool, attn_task_fn, &at);              // att rows [n][nh*hd], dense
        matmul(f, &ly->wo, f->att, n, f->o, H);

        // ---- feed-forward (§2.2 / §2.5) ----
        // The layer's last stage also does h *= layer_output_scale and the next layer's
        // xn = RMSNorm(h, attn_norm) (run_layer_end).
        int last = ST_LAYER_END;
        if (m->n_expert) {
            run_tokens(&tt, ST_POST_ATTN);                     // h += RMSNorm(o, post_attention_norm)
            moe_block(f, ly, n);
        } else {
            const ilm_weight *gu[2] = {&ly->ffn_gate, &ly->ffn_up};
            // h += RMSNorm(o, post_attention_norm); xn = RMSNorm(h, ffn_norm)
            bool q = run_tokens_quant(&tt, ST_POST_ATTN_FFN_NORM, gu, 2);
            mlp(f, &tt, &ly->ffn_gate, &ly->ffn_up, &ly->ffn_down, f->xn, q, n, f->o);
            if (m->ple_dim) run_tokens(&tt, ST_POST_FFW);      // h += RMSNorm(o, post_ffw_norm)
            else last = ST_POST_FFW;
        }

        // ---- per-layer input (§2.4) ----
        if (m->ple_dim) {
            matmul(f, &ly->inp_gate, f->h, n, f->gate, m->ple_dim);
            run_tokens(&tt, ST_PLE_GATE);                      // g = gelu(g) ⊙ ple[l]
            matmul(f, &ly->proj, f->gate, n, f->o, H);
            last = ST_PLE_POST;                                // h += RMSNorm(o, post_norm)
        }
        xq_ready = run_layer_end(&tt, last, next);             // h *= layer_output_scale; next xn
        xn_ready = next != NULL;
    }
    return 0;
}

static int check_batch(ilm_fwd *f, ilm_kv **kvs, int n_seq, const ilm_batch *b, ilm_err *err) {
    const ilm_model *m = f->m;
    for (int i = 0; i < b->n; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= m->n_vocab)
            return ilm_fail(err, "token id out of range (%d; vocabulary %d)", b->tokens[i], m->n_vocab);
        int s = b->seq ? b->seq[i] : 0;
        if (s < 0 || s >= n_seq) return ilm_fail(err, "sequence index out of range (%d)", s);
        if (b->pos[i] >= kvs[s]->n_ctx || b->pos[i] >= f->opt.max_ctx)
            return ilm_fail(err, "context full: position %d exceeds the context length %d", b->pos[i], kvs[s]->n_ctx);
    }
    // Positions of each sequence must continue its cache in order.
    for (int s = 0; s < n_seq; s++) {
        int expect = kvs[s]->n_pos;
        for (int i = 0; i < b->n; i++)
            if ((b->seq ? b->seq[i] : 0) == s) {
                if (b->pos[i] != expect)
                    return ilm_fail(err, "sequence %d: position %d does not continue the cache (expected %d)", s,
                                    b->pos[i], expect);
                expect++;
            }
    }
    return 0;
}

// The final soft-cap over all logits rows, split over the pool for real vocabularies (262,144
// tanh per row; elementwise, so the split changes no value).
#define SOFTCAP_PER_DISPATCH 32768
typedef struct {
    float *x;
    size_t n;
    float cap;
} softcap_task;

static void softcap_task_fn(void *ctx, int ith, int nth) {
    const softcap_task *t = ctx;
    size_t a = t->n * (size_t)ith / (size_t)nth / 64 * 64;
    size_t b = ith + 1 == nth ? t->n : t->n * (size_t)(ith + 1) / (size_t)nth / 64 * 64;
    for (size_t i = a; i < b; i += (size_t)1 << 30) {  // kernels take int lengths
        size_t len = b - i < ((size_t)1 << 30) ? b - i : ((size_t)1 << 30);
        ilm_k->softcap(t->x + i, (int)len, t->cap);
    }
}

int ilm_forward(ilm_fwd *f, ilm_kv **kvs, int n_seq, const ilm_batch *b, float *logits, float *hidden, ilm_err *err) {
    const ilm_model *m = f->m;
    const int H = m->n_embd, V = m->n_vocab;
    if (check_batch(f, kvs, n_seq, b, err)) return -1;
    const ilm_weight *head = m->output.t ? &m->output : &m->tok_embd;
    int row_out = 0;
    for (int start = 0; start < b->n; start += f->B) {
        int n = b->n - start < f->B ? b->n - start : f->B;
        ilm_batch c = {n, b->tokens + start, b->pos + start, b->seq ? b->seq + start : NULL,
                       b->want ? b->want + start : NULL};
        forward_chunk(f, kvs, &c, n);
        for (int i = 0; i < n; i++) {
            ilm_kv *kv = kvs[c.seq ? c.seq[i] : 0];
            if (c.pos[i] + 1 > kv->n_pos) kv->n_pos = c.pos[i] + 1;
        }
        // final norm and tied head for the wanted rows (§2.2)
        int nw = 0;
        for (int i = 0; i < n; i++)
            if (!c.want || c.want[i]) {
                ilm_k->rmsnorm(f->yrows + (size_t)nw * H, f->h + (size_t)i * H, m->output_norm, H, m->eps);
                nw++;
            }
        if (!nw) continue;
        if (hidden) memcpy(hidden + (size_t)row_out * H, f->yrows, sizeof(float) * (size_t)nw * H);
        if (logits) {
            float *lg = logits + (size_t)row_out * V;
            for (int s = 0; s < nw; s += f->B) {  // the head may need more q8 scratch than B rows: chunk
                int k = nw - s < f->B ? nw - s : f->B;
                matmul(f, head, f->yrows + (size_t)s * H, k, lg + (size_t)s * V, V);
            }
            if (m->softcap > 0) {
                softcap_task sc = {lg, (size_t)nw * (size_t)V, m->softcap};
                if (sc.n >= SOFTCAP_PER_DISPATCH) ilm_pool_run(f->pool, softcap_task_fn, &sc);
                else softcap_task_fn(&sc, 0, 1);
            }
            for (int r = 0; r < nw; r++)
                for (int s = 0; s < m->n_suppress; s++) lg[(size_t)r * V + (size_t)m->suppress_tokens[s]] = -INFINITY;
        }
        row_out += nw;
    }
    return 0;
}
