// forward.c — the Gemma 4 verifier forward pass, batched over tokens (docs/gemma4.md §2).
//
// The layer loop (forward_chunk) lists the stages of §2.2 in order; each stage is a matrix
// product, attention, or a named row function run over the batch's rows by for_rows. All of it
// runs on the thread pool with a static split: matrix products by output rows, attention by
// (token, head) pairs, row functions by tokens (inline for a single token, where a dispatch
// costs more than the work). Row functions that end a layer's step also quantize their output
// rows for the next matrix product, saving it a dispatch. Every row's computation depends only
// on that token's inputs and its sequence's cache, so batched and one-by-one passes agree bit
// for bit. The MoE block is in moe.c, the pieces shared with the drafter in layer.c.
#include "model/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layer.h"
#include "model/moe.h"
#include "runtime/matmul.h"

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
    ilm_q8a *qa;                    // prepared activations   ilm_act_scratch_bytes(B*topk, max_k)
    float *scores;                  // attention scratch      [nth][max_ctx]
    float *yrows;                   // final rows             [B][H]
    ilm_moe *moe;                   // the MoE block's scratch (MoE models only)
};

// --- matrix products (matmul.c) ----------------------------------------------------------------

static void *zalloc(size_t n, ilm_err *err) { return ilm_calloc(1, n ? n : 1, err); }

// y = W·x for n rows of x (stride K); picks the q8 or f32 kernel for the weight type.
static void matmul(ilm_fwd *f, const ilm_weight *w, const float *x, int n, float *y, int ldy) {
    ilm_matmul(f->pool, f->opt.act, f->qa, w, x, n, y, ldy);
}

// Several matrices sharing one input (Q/K/V, gate/up): one quantization, one dispatch.
// x_q8: the row pass that produced x already put its Q8 rows in f->qa (for_rows_q8).
static void matmul_shared(ilm_fwd *f, const ilm_weight *const *ws, float *const *ys, const int *ldys, int nw,
                          const float *x, bool x_q8, int n) {
    ilm_matmul_shared(f->pool, f->opt.act, f->qa, ws, ys, ldys, nw, x, x_q8, n);
}

// Whether every one of ws takes Q8 activations (so one quantized input serves them all).
static bool all_q8(const ilm_fwd *f, const ilm_weight *const *ws, int nw) {
    bool q = true;
    for (int i = 0; i < nw; i++) q &= ilm_matmul_uses_q8(f->opt.act, ws[i]);
    return q;
}

// The matrices that read a layer's attention input xn: Q, and K, V where the layer owns them.
static int qkv_weights(const ilm_layer *ly, const ilm_weight **ws) {
    ws[0] = &ly->wq, ws[1] = &ly->wk, ws[2] = &ly->wv;
    return ly->owns_kv ? (ly->wv.t ? 3 : 2) : 1;
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
    f->qa = zalloc(ilm_act_scratch_bytes((int)(B * topk), f->max_k), err);  // MoE: B·topk rows (Q8 or bf16)
    f->scores = zalloc((size_t)nth * (size_t)f->opt.max_ctx * 4, err);
    f->yrows = zalloc(B * H * 4, err);
    bool ok = f->h && f->xn && f->x0 && f->q && f->k && f->v && f->att && f->o && f->gate && f->up && f->ple && f->ple_ctx &&
              f->cs_swa && f->cs_full && f->qa && f->scores && f->yrows;
    if (ok && m->n_expert) {
        const ilm_moe_buffers buf = {pool, f->opt.act, f->qa, f->xn, f->o, f->gate, f->up, f->yrows};
        ok = ilm_moe_create(&f->moe, m, f->B, &buf, err) == 0;
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
                  f->cs_full, f->qa, f->scores, f->yrows};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    ilm_moe_free(f->moe);
    free(f);
}

// --- row functions: one token row of a layer stage ---------------------------------------------

// What a row function needs to find its row i of the batch.
typedef struct {
    ilm_fwd *f;
    ilm_kv **kvs;
    const ilm_batch *b;
    int l, n;                       // layer index, rows in the batch
    const ilm_layer *ly, *next;     // this layer, the next one (NULL after the last)
    ilm_q8a *xq;                    // where the row's output also goes as Q8 for the next matmul, or NULL
} layer_rows;

typedef void (*row_fn)(const layer_rows *r, int i);

// Row i of x [n][K] as Q8, when the stage's output feeds a matmul that takes Q8 (r->xq).
static void row_to_q8(const layer_rows *r, const float *x, int K, int i) {
    if (r->xq) ilm_quantize_rows(x + (size_t)i * K, 1, K, K, r->xq + (size_t)i * (K / ILM_QK));
}

// Row i of xn = RMSNorm(h, w), also as Q8 when r->xq asks for it.
static void norm_row(const layer_rows *r, int i, const float *w) {
    const ilm_model *m = r->f->m;
    const int H = m->n_embd;
    ilm_k->rmsnorm(r->f->xn + (size_t)i * H, r->f->h + (size_t)i * H, w, H, m->eps);
    row_to_q8(r, r->f->xn, H, i);
}

// Row i of h += RMSNorm(o, w).
static void residual_row(const layer_rows *r, int i, const float *w) {
    const int H = r->f->m->n_embd;
    ilm_add_normed(r->f->h + (size_t)i * H, r->f->o + (size_t)i * H, w, H, r->f->m->eps);
}

// xn = RMSNorm(h, attn_norm)                                                      [H]
static void attn_norm(const layer_rows *r, int i) { norm_row(r, i, r->ly->attn_norm); }

// Per head q = RoPE(RMSNorm(q, q_norm)); owning layers also per KV head
// v = rms(v) (v = raw k on K = V layers), k = RoPE(RMSNorm(k, k_norm)), and k, v into the
// cache slot of the row's position (distinct per token of a sequence).                   §2.3
static void qk_norm_rope_store(const layer_rows *r, int i) {
    ilm_fwd *f = r->f;
    const ilm_model *m = f->m;
    const ilm_layer *ly = r->ly;
    const int hd = ly->hd, nkv = ly->n_kv_head, kvw = nkv * hd;
    const int n_rot = ly->sliding ? m->n_rot_swa : m->n_rot_full;
    const float *cs = (ly->sliding ? f->cs_swa : f->cs_full) + (size_t)i * n_rot;
    float *q = f->q + (size_t)i * f->max_q;
    for (int hh = 0; hh < ly->n_head; hh++) {
        ilm_k->rmsnorm(q + hh * hd, q + hh * hd, ly->q_norm, hd, m->eps);
        ilm_k->rope_neox(q + hh * hd, n_rot, cs);
    }
    if (!ly->owns_kv) return;
    float *k = f->k + (size_t)i * f->max_kv, *v = f->v + (size_t)i * f->max_kv;
    if (!ly->wv.t) memcpy(v, k, sizeof(float) * (size_t)kvw);  // K = V: raw K before its norm
    for (int g = 0; g < nkv; g++) {
        ilm_k->rmsnorm(v + g * hd, v + g * hd, NULL, hd, m->eps);
        ilm_k->rmsnorm(k + g * hd, k + g * hd, ly->k_norm, hd, m->eps);
        ilm_k->rope_neox(k + g * hd, n_rot, cs);
    }
    ilm_kv *kv = r->kvs[r->b->seq ? r->b->seq[i] : 0];
    ilm_kv_layer *KL = &kv->layer[r->l];
    size_t slot = (size_t)(r->b->pos[i] % KL->slots);
    if (kv->type == ILM_TYPE_F16) {
        ilm_k->f32_to_f16(k, (uint16_t *)(KL->k + slot * KL->row_bytes), kvw);
        ilm_k->f32_to_f16(v, (uint16_t *)(KL->v + slot * KL->row_bytes), kvw);
    } else {
        memcpy(KL->k + slot * KL->row_bytes, k, sizeof(float) * (size_t)kvw);
        memcpy(KL->v + slot * KL->row_bytes, v, sizeof(float) * (size_t)kvw);
    }
}

// h += RMSNorm(o, post_attention_norm)                                            [H]
static void post_attn_residual(const layer_rows *r, int i) { residual_row(r, i, r->ly->post_attn_norm); }

// xn = RMSNorm(h, ffn_norm)                                                       [H]
static void ffn_norm(const layer_rows *r, int i) { norm_row(r, i, r->ly->ffn_norm); }

// gate = gelu(gate) ⊙ up                                                          [F]
static void geglu_rows(const layer_rows *r, int i) {
    const int F = r->ly->n_ff;
    float *g = r->f->gate + (size_t)i * F;
    ilm_k->geglu(g, g, r->f->up + (size_t)i * F, F);
    row_to_q8(r, r->f->gate, F, i);
}

// h += RMSNorm(o, post_ffw_norm)                                                  [H]
static void ffn_residual(const layer_rows *r, int i) { residual_row(r, i, r->ly->post_ffw_norm); }

// gate = gelu(gate) ⊙ ple[l]                                                      [P]   §2.4
static void ple_gate(const layer_rows *r, int i) {
    const ilm_model *m = r->f->m;
    const int P = m->ple_dim;
    float *g = r->f->gate + (size_t)i * P;
    ilm_k->geglu(g, g, r->f->ple + (size_t)i * P * m->n_layer + (size_t)r->l * P, P);
}

// h += RMSNorm(o, per-layer post_norm)                                            [H]   §2.4
static void ple_residual(const layer_rows *r, int i) { residual_row(r, i, r->ly->ple_post_norm); }

// h *= layer_output_scale; then the next layer's attention input xn = RMSNorm(h, attn_norm)
static void layer_end(const layer_rows *r, int i) {
    const int H = r->f->m->n_embd;
    float *h = r->f->h + (size_t)i * H;
    if (r->ly->out_scale != 1.0f)
        for (int d = 0; d < H; d++) h[d] *= r->ly->out_scale;
    if (r->next) norm_row(r, i, r->next->attn_norm);
}

// --- running row functions over the batch -------------------------------------------------------

typedef struct {
    const layer_rows *r;
    row_fn first, then;
} rows_task;

static void rows_task_fn(void *ctx, int ith, int nth) {
    const rows_task *t = ctx;
    const int n = t->r->n;
    int i0 = (int)((long)n * ith / nth), i1 = (int)((long)n * (ith + 1) / nth);
    for (int i = i0; i < i1; i++) {
        if (t->first) t->first(t->r, i);
        if (t->then) t->then(t->r, i);
    }
}

// first(i), then then(i) (either may be NULL) for every row: one pass over the rows, so two
// cheap stages share a dispatch. One token (decode) is cheaper inline than a pool dispatch
// (~1 µs); from 2 tokens on the rows are split over the threads (speculative verification of
// 4-5 tokens on pyc80m, 2 threads: -5% against inline up to 7 tokens).
#define ILM_TOKENS_PER_DISPATCH 2
static void for_rows(const layer_rows *r, row_fn first, row_fn then) {
    rows_task t = {r, first, then};
    if (r->n < ILM_TOKENS_PER_DISPATCH) rows_task_fn(&t, 0, 1);
    else ilm_pool_run(r->f->pool, rows_task_fn, &t);
}

// for_rows whose output rows also go to f->qa as Q8 when every matrix of `next` (the matmul
// that reads them) takes Q8 activations: that matmul then skips its own quantization dispatch.
// Returns whether they did.
static bool for_rows_q8(const layer_rows *r, row_fn first, row_fn then, const ilm_weight *const *next, int n_next) {
    layer_rows q = *r;
    q.xq = n_next && all_q8(r->f, next, n_next) ? r->f->qa : NULL;
    for_rows(&q, first, then);
    return q.xq != NULL;
}

// --- the other stages ------------------------------------------------------------------------------

// att[i][h] = softmax(q[i][h] · K^T) · V over the row's visible cache, for every (row, head)
// pair, split over the pool by pairs.                                                    §2.3
static void attention_pairs(void *ctx, int ith, int nth) {
    const layer_rows *r = ctx;
    ilm_fwd *f = r->f;
    const ilm_layer *ly = r->ly;
    const int nh = ly->n_head, hd = ly->hd, group = nh / ly->n_kv_head;
    const int pairs = r->n * nh;
    int p0 = (int)((long)pairs * ith / nth), p1 = (int)((long)pairs * (ith + 1) / nth);
    float *scores = f->scores + (size_t)ith * (size_t)f->opt.max_ctx;
    for (int p = p0; p < p1; p++) {
        int i = p / nh, h = p % nh;
        const ilm_kv *kv = r->kvs[r->b->seq ? r->b->seq[i] : 0];
        int pos = r->b->pos[i];
        ilm_attend_head(kv, ly->kv_src, h / group, hd, ly->sliding, f->m->window, pos, pos,
                        f->q + (size_t)i * f->max_q + (size_t)h * hd, scores,
                        f->att + (size_t)i * (size_t)(nh * hd) + (size_t)h * hd);
    }
}

// h = x0 = E[tok]·sqrt(H) (x0 kept for PLE) and the RoPE tables of each row's position.   §2.2
static void embed_rows(ilm_fwd *f, const ilm_batch *b, int n) {
    const ilm_model *m = f->m;
    const int H = m->n_embd;
    for (int i = 0; i < n; i++) {
        ilm_embed_token(m, b->tokens[i], f->h + (size_t)i * H);
        if (m->ple_dim) memcpy(f->x0 + (size_t)i * H, f->h + (size_t)i * H, sizeof(float) * (size_t)H);
        ilm_rope_table(f->cs_swa + (size_t)i * m->n_rot_swa, b->pos[i], m->n_rot_swa, m->rope_base_swa, NULL);
        ilm_rope_table(f->cs_full + (size_t)i * m->n_rot_full, b->pos[i], m->n_rot_full, m->rope_base_full,
                       m->rope_freqs);
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

// One chunk of at most B rows through every layer (§2.2). Shapes: H = n_embd, F = the layer's
// n_ff, P = ple_dim, nh/nkv heads of hd.
static void forward_chunk(ilm_fwd *f, ilm_kv **kvs, const ilm_batch *b, int n) {
    const ilm_model *m = f->m;
    const int H = m->n_embd;
    embed_rows(f, b, n);                                    // h, x0 [n][H]; RoPE tables
    if (m->ple_dim) ple_prepare(f, b, n);                   // ple [n][L·P]                    §2.4

    layer_rows r = {f, kvs, b, 0, n, NULL, NULL, NULL};
    const ilm_weight *qkv[3];
    for (int l = 0; l < m->n_layer; l++) {
        const ilm_layer *ly = &m->layers[l];
        r.l = l, r.ly = ly, r.next = l + 1 < m->n_layer ? ly + 1 : NULL;

        // ---- attention (§2.3) ----
        // xn = RMSNorm(h, attn_norm) [n][H]; after layer 0 the previous layer's layer_end made it.
        // Whoever made it also put its Q8 rows in f->qa when every one of Q/K/V takes Q8.
        const int nqkv = qkv_weights(ly, qkv);
        const bool xn_q8 = all_q8(f, qkv, nqkv);
        if (l == 0) for_rows_q8(&r, attn_norm, NULL, qkv, nqkv);
        float *ys[3] = {f->q, f->k, f->v};
        int ld[3] = {f->max_q, f->max_kv, f->max_kv};
        matmul_shared(f, qkv, ys, ld, nqkv, f->xn, xn_q8, n);  // q [n][nh·hd]; k, v [n][nkv·hd]
        for_rows(&r, qk_norm_rope_store, NULL);             // q, k = RoPE(RMSNorm(·)); v = rms(v); k, v -> cache
        ilm_pool_run(f->pool, attention_pairs, &r);         // att [n][nh·hd]
        matmul(f, &ly->wo, f->att, n, f->o, H);             // o = W_o · att [n][H]

        // ---- feed-forward (§2.2; MoE §2.5) ----
        row_fn last;                                        // the layer's last residual add (runs with layer_end)
        if (f->moe) {
            for_rows(&r, post_attn_residual, NULL);         // h += RMSNorm(o, post_attention_norm)
            ilm_moe_block(f->moe, ly, f->h, n);             // h += RMSNorm(moe(h), post_ffw_norm)
            last = NULL;
        } else {
            const ilm_weight *gu[2] = {&ly->ffn_gate, &ly->ffn_up}, *down = &ly->ffn_down;
            float *gu_y[2] = {f->gate, f->up};
            int gu_ld[2] = {ly->n_ff, ly->n_ff};
            // h += RMSNorm(o, post_attention_norm); xn = RMSNorm(h, ffn_norm) [n][H]
            bool q = for_rows_q8(&r, post_attn_residual, ffn_norm, gu, 2);
            matmul_shared(f, gu, gu_y, gu_ld, 2, f->xn, q, n);  // gate, up = W_gate · xn, W_up · xn [n][F]
            q = for_rows_q8(&r, geglu_rows, NULL, &down, 1);    // gate = gelu(gate) ⊙ up [n][F]
            matmul_shared(f, &down, &f->o, &H, 1, f->gate, q, n);  // o = W_down · gate [n][H]
            last = ffn_residual;                            // h += RMSNorm(o, post_ffw_norm)
        }

        // ---- per-layer input (§2.4) ----
        if (m->ple_dim) {
            if (last) for_rows(&r, last, NULL);
            matmul(f, &ly->inp_gate, f->h, n, f->gate, m->ple_dim);  // gate = W_inp_gate · h [n][P]
            for_rows(&r, ple_gate, NULL);                   // gate = gelu(gate) ⊙ ple[l] [n][P]
            matmul(f, &ly->proj, f->gate, n, f->o, H);      // o = W_proj · gate [n][H]
            last = ple_residual;                            // h += RMSNorm(o, post_norm)
        }

        // h *= layer_output_scale; the next layer's xn = RMSNorm(h, attn_norm), quantized for its Q/K/V
        for_rows_q8(&r, last, layer_end, qkv, r.next ? qkv_weights(r.next, qkv) : 0);
    }
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
            if (kv->n_pos > kv->n_written) kv->n_written = kv->n_pos;
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
