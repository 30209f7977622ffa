// drafter.c — loading and running the Gemma 4 MTP drafter (docs/gemma4.md §3.4, §3.5, §4).
//
// Every drafter layer is a KV-shared layer: it projects only queries and attends to the
// verifier's cache of the last verifier layer of its type, with the verifier's RoPE
// (always proportional RoPE via the target's rope_freqs on full layers: ik's gemma4_mtp
// files carry none, §3.4). Drafted tokens never enter any cache.
#include "model/drafter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/topk.h"
#include "model/layer.h"
#include "runtime/matmul.h"
#include "runtime/threadpool.h"

#define DRAFT_MAX_LAYERS 16
#define DRAFT_KEYS_PER_DISPATCH 256  // visible keys x heads from which heads go on the pool
#define DRAFT_CAND_MACS_PER_DISPATCH 8192  // centroid-head work (candidates x H) from which it goes on the pool

typedef struct {
    bool sliding;
    int hd, n_head, n_kv_head, n_ff, src;  // src: verifier layer whose cache it reads
    float out_scale;
    const float *attn_norm, *q_norm, *post_attn_norm, *ffn_norm, *post_ffw_norm;
    ilm_weight wq, wo, gate, up, down;
} draft_layer;

struct ilm_drafter {
    const ilm_model *t;       // target (verifier)
    ilm_model *own;           // owner of the GGUF and converted vectors
    ilm_pool *pool;
    int act;
    char arch[32], desc[160];
    int n_layer, H, Ht, V;
    float eps;
    draft_layer layers[DRAFT_MAX_LAYERS];
    ilm_weight embd, pre, post, centroids;
    const float *out_norm;
    // centroid head: tokens of each centroid, bucket size V / n_centroids
    int n_centroids, top_k, bucket;
    int32_t *bucket_tokens;   // [n_centroids][bucket]
    // scratch
    float *xin, *x, *a, *q, *att, *o, *gbuf, *ubuf, *y, *logits, *probs, *cs_swa, *cs_full, *scores, *cscore, *cand;
    float *chain_g;           // [2][H_t] conditioning vectors of a chain
    float *cand_rows;         // [threads][bucket][H] dequantized candidate rows
    int *selc;                // [top_k] chosen centroids
    ilm_q8a *qa;
    int max_k;
    int nb;                   // rows the scratch holds (ilm_drafter_reserve)
    const float *ycur;        // the row the centroid head works on
    size_t scores_len;        // per thread in scores
    enum ilm_drafter_attention emulate;  // see ilm_drafter_emulate (tests only)
};

// Last verifier layer of the given type that owns a cache (§4.3).
static int target_source(const ilm_model *t, bool sliding) {
    for (int i = t->n_layer - 1; i >= 0; i--)
        if (t->layers[i].owns_kv && t->layers[i].sliding == sliding) return i;
    return -1;
}

// Finds the first present tensor among alternative names.
static const char *first_present(ilm_gguf *g, const char *const *names) {
    for (; *names; names++)
        if (ilm_gguf_find_tensor(g, *names)) return *names;
    return NULL;
}

static int load_centroids(ilm_drafter *d, ilm_loader *L, ilm_err *err) {
    const char *cn[] = {"mtp_centroids.weight", "mtp.centroids.weight", NULL};
    const char *on[] = {"mtp_token_ordering.weight", "mtp.token_ordering.weight", NULL};
    const char *cname = first_present(L->g, cn), *oname = first_present(L->g, on);
    bool ordered = false;
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(L->g, ilm_loader_key(L, "use_ordered_embeddings"));
    if (kv && kv->val.type == GGUF_BOOL) ordered = kv->val.u64 != 0;
    if (!ordered || !cname || !oname) return 0;  // plain tied head
    uint32_t nc, topk;
    const char *ckeys[] = {"centroid_count", "n_centroids"};
    nc = 0;
    for (int i = 0; i < 2 && !nc; i++)
        if (ilm_gguf_get_u32_or(L->g, ilm_loader_key(L, ckeys[i]), 0, &nc, err)) return -1;
    if (ilm_gguf_get_u32_or(L->g, ilm_loader_key(L, "centroid_top_k"), 0, &topk, err)) return -1;
    const ilm_gguf_tensor *ct = ilm_gguf_find_tensor(L->g, cname);
    if (!nc) nc = (uint32_t)ct->ne[1];
    if (nc == 0 || d->V % (int)nc || topk == 0 || topk > nc)
        return ilm_fail(err, "%s: bad centroid head (centroids %u, top-k %u, vocab %d)", L->path, nc, topk, d->V);
    if (ilm_load_matrix(L, cname, d->H, nc, true, &d->centroids, err)) return -1;
    const ilm_gguf_tensor *ot = ilm_gguf_find_tensor(L->g, oname);
    if (ot->ne[0] * ot->ne[1] * ot->ne[2] * ot->ne[3] != d->V || (ot->type != ILM_TYPE_I32 && ot->type != ILM_TYPE_F32))
        return ilm_fail(err, "%s: tensor %s: expected %d I32/F32 values", L->path, oname, d->V);
    d->n_centroids = (int)nc;
    d->top_k = (int)topk;
    d->bucket = d->V / (int)nc;
    d->bucket_tokens = malloc(sizeof(int32_t) * (size_t)d->V);
    int *fill = calloc(nc, sizeof(int));
    if (!d->bucket_tokens || !fill) {
        free(fill);
        return ilm_fail(err, "out of memory");
    }
    // The file stores token -> centroid (§3.4); invert it into buckets.
    for (int tok = 0; tok < d->V; tok++) {
        long c;
        if (ot->type == ILM_TYPE_I32) c = ((const int32_t *)ot->data)[tok];
        else c = (long)((const float *)ot->data)[tok];
        if (c < 0 || c >= (long)nc || fill[c] >= d->bucket) {
            free(fill);
            return ilm_fail(err, "%s: tensor %s: token %d maps to an invalid or overfull centroid (%ld)", L->path,
                            oname, tok, c);
        }
        d->bucket_tokens[c * d->bucket + fill[c]++] = tok;
    }
    free(fill);
    return 0;
}

// A drafter layer's tensors in lookup order (docs/gemma4.md §3.4); Q = heads·hd.
#define F(...) ILM_FIELD(draft_layer, __VA_ARGS__)
static const ilm_layer_field draft_fields[] = {
    F(VEC,    "attn_norm.weight",           attn_norm,      H,  1, true,  0),
    F(MATRIX, "attn_q.weight",              wq,             H,  Q, true,  0),
    F(VEC,    "attn_q_norm.weight",         q_norm,         HD, 1, true,  0),
    F(MATRIX, "attn_output.weight",         wo,             Q,  H, true,  0),
    F(VEC,    "post_attention_norm.weight", post_attn_norm, H,  1, true,  0),
    F(VEC,    "ffn_norm.weight",            ffn_norm,       H,  1, true,  0),
    F(MATRIX, "ffn_gate.weight",            gate,           H, FF, true,  0),
    F(MATRIX, "ffn_up.weight",              up,             H, FF, true,  0),
    F(MATRIX, "ffn_down.weight",            down,          FF,  H, true,  0),
    F(VEC,    "post_ffw_norm.weight",       post_ffw_norm,  H,  1, true,  0),
    F(SCALAR, "layer_output_scale.weight",  out_scale,      1,  1, false, 0),
};
#undef F
#define N_DRAFT_FIELDS (sizeof draft_fields / sizeof draft_fields[0])

static int load_layers(ilm_drafter *d, ilm_loader *L, ilm_err *err) {
    const ilm_model *t = d->t;
    uint32_t n_layer;
    if (ilm_gguf_get_u32(L->g, ilm_loader_key(L, "block_count"), &n_layer, err)) return -1;
    if (n_layer < 1 || n_layer > DRAFT_MAX_LAYERS)
        return ilm_fail(err, "%s: block_count out of range (%u)", L->path, n_layer);
    d->n_layer = (int)n_layer;
    int32_t nh[DRAFT_MAX_LAYERS], nkv[DRAFT_MAX_LAYERS], nff[DRAFT_MAX_LAYERS];
#define KEY(s) ilm_loader_key(L, s)
    if (ilm_gguf_get_u32_per_layer(L->g, KEY("attention.head_count"), d->n_layer, nh, err)) return -1;
    if (ilm_gguf_find_kv(L->g, KEY("attention.head_count_kv"))) {
        if (ilm_gguf_get_u32_per_layer(L->g, KEY("attention.head_count_kv"), d->n_layer, nkv, err)) return -1;
    } else
        for (int i = 0; i < d->n_layer; i++) nkv[i] = -1;  // take the target's
    if (ilm_gguf_get_u32_per_layer(L->g, KEY("feed_forward_length"), d->n_layer, nff, err)) return -1;
    uint32_t kl, kls;
    if (ilm_gguf_get_u32_or(L->g, KEY("attention.key_length"), (uint32_t)t->hd_full, &kl, err) ||
        ilm_gguf_get_u32_or(L->g, KEY("attention.key_length_swa"), (uint32_t)t->hd_swa, &kls, err))
        return -1;
    const char *key = KEY("attention.sliding_window_pattern");
    const ilm_gguf_kv *pat = ilm_gguf_find_kv(L->g, key);
    if (!pat || pat->val.type != GGUF_ARRAY || pat->val.arr.count != (uint64_t)d->n_layer ||
        pat->val.arr.elem_type == GGUF_STRING || pat->val.arr.elem_type == GGUF_ARRAY)
        return ilm_fail(err, "%s: missing or malformed %s", L->path, key);
    if (ilm_gguf_get_f32(L->g, KEY("attention.layer_norm_rms_epsilon"), &d->eps, err)) return -1;
#undef KEY
    for (int i = 0; i < d->n_layer; i++) {
        draft_layer *ly = &d->layers[i];
        ly->sliding = ilm_gguf_arr_int(&pat->val, (uint64_t)i) != 0;
        ly->hd = ly->sliding ? (int)kls : (int)kl;
        ly->n_head = nh[i];
        ly->n_ff = nff[i];
        ly->src = target_source(t, ly->sliding);
        if (ly->src < 0)
            return ilm_fail(err, "%s: drafter layer %d is %s but the verifier has no such layer with a KV cache", L->path,
                            i, ly->sliding ? "sliding" : "full");
        const ilm_layer *tl = &t->layers[ly->src];
        ly->n_kv_head = nkv[i] < 0 ? tl->n_kv_head : nkv[i];
        if (ly->hd != tl->hd)
            return ilm_fail(err, "%s: drafter layer %d head dim %d does not fit the verifier's KV (layer %d: %d)",
                            L->path, i, ly->hd, ly->src, tl->hd);
        if (ly->n_kv_head != tl->n_kv_head)
            return ilm_fail(err, "%s: drafter layer %d expects %d KV heads, the verifier's layer %d has %d", L->path, i,
                            ly->n_kv_head, ly->src, tl->n_kv_head);
        if (ly->n_head < 1 || ly->n_head > 1024 || ly->n_head % ly->n_kv_head)
            return ilm_fail(err, "%s: drafter layer %d: head count %d not a multiple of %d KV heads", L->path, i,
                            ly->n_head, ly->n_kv_head);
        if (ly->n_ff < 1 || ly->n_ff > (1 << 20)) return ilm_fail(err, "%s: bad feed_forward_length (%d)", L->path, ly->n_ff);
        const int64_t dim[ILM_N_DIMS] = {[ILM_DIM_1] = 1, [ILM_DIM_H] = d->H,
                                         [ILM_DIM_Q] = (int64_t)ly->n_head * ly->hd, [ILM_DIM_HD] = ly->hd,
                                         [ILM_DIM_FF] = ly->n_ff};
        if (ilm_load_fields(L, i, draft_fields, N_DRAFT_FIELDS, 0, dim, ly, err)) return -1;
        if (d->max_k < ly->n_head * ly->hd) d->max_k = ly->n_head * ly->hd;
        if (d->max_k < ly->n_ff) d->max_k = ly->n_ff;
    }
    return 0;
}

// Every matrix: the globals and each layer's table fields.
static int drafter_weights(void *drafter, ilm_weight_fn fn, void *ctx) {
    ilm_drafter *d = drafter;
    ilm_weight *const globals[] = {&d->embd, &d->pre, &d->post, &d->centroids};
    return ilm_walk_weights(globals, sizeof globals / sizeof globals[0], draft_fields, N_DRAFT_FIELDS, d->layers,
                            sizeof d->layers[0], d->n_layer, fn, ctx);
}

int ilm_drafter_load(ilm_drafter **out, const char *path, const ilm_model *target, ilm_pool *pool, int act,
                     ilm_err *err) {
    ilm_drafter *d = calloc(1, sizeof *d);
    if (!d || !(d->own = calloc(1, sizeof *d->own))) {
        free(d);
        return ilm_fail(err, "out of memory");
    }
    d->t = target;
    d->pool = pool;
    d->act = act;
    if (ilm_gguf_open(&d->own->gguf, path, err)) goto fail;
    ilm_gguf *g = d->own->gguf;
    if (g->n_tensors == 0) {
        ilm_fail(err, "%s: has no tensors: a vocabulary-only file, not a drafter", path);
        goto fail;
    }
    char *arch = NULL;
    if (ilm_gguf_get_str(g, "general.architecture", &arch, err)) goto fail;
    if (strcmp(arch, "gemma4_mtp") && strcmp(arch, "gemma4-assistant") && strcmp(arch, "gemma4_assistant")) {
        ilm_fail(err, "%s: not a Gemma 4 drafter: architecture '%s' (expected gemma4_mtp, gemma4-assistant or "
                      "gemma4_assistant)", path, arch);
        free(arch);
        goto fail;
    }
    snprintf(d->arch, sizeof d->arch, "%s", arch);
    free(arch);
    ilm_loader L = {.g = g, .m = d->own, .path = path, .arch = d->arch};
    uint32_t H;
    if (ilm_gguf_get_u32(g, ilm_loader_key(&L, "embedding_length"), &H, err)) goto fail;
    if (H < 8 || H > 65536) {
        ilm_fail(err, "%s: embedding_length out of range (%u)", path, H);
        goto fail;
    }
    d->H = (int)H;
    const ilm_gguf_tensor *te = ilm_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2) {
        ilm_fail(err, "%s: missing tensor token_embd.weight", path);
        goto fail;
    }
    if (te->ne[1] != target->n_vocab) {
        ilm_fail(err, "%s: drafter vocabulary (%lld) does not match the verifier's (%d)", path, (long long)te->ne[1],
                 target->n_vocab);
        goto fail;
    }
    // Projections under any of the spellings in the wild (§3.5).
    const char *pre_names[] = {"mtp_pre_proj.weight", "nextn.pre_projection.weight", "mtp.pre_projection.weight",
                               "mtp.pre_proj.weight", NULL};
    const char *post_names[] = {"mtp_post_proj.weight", "nextn.post_projection.weight", "mtp.post_projection.weight",
                                "mtp.post_proj.weight", NULL};
    const char *pre = first_present(g, pre_names), *post = first_present(g, post_names);
    if (!pre || !post) {
        ilm_fail(err, "%s: missing the drafter's pre/post projection tensors", path);
        goto fail;
    }
    // Backbone width H_t: metadata under either name, else from the pre-projection shape.
    uint32_t Ht = 0;
    if (ilm_gguf_get_u32_or(g, ilm_loader_key(&L, "backbone_embedding_length"), 0, &Ht, err) ||
        (!Ht && ilm_gguf_get_u32_or(g, ilm_loader_key(&L, "embedding_length_out"), 0, &Ht, err)))
        goto fail;
    if (!Ht) Ht = (uint32_t)(ilm_gguf_find_tensor(g, pre)->ne[0] / 2);
    if ((int)Ht != target->n_embd) {
        ilm_fail(err, "%s: drafter backbone width %u does not match the verifier's hidden size %d", path, Ht,
                 target->n_embd);
        goto fail;
    }
    d->Ht = (int)Ht;
    d->V = target->n_vocab;
    if (ilm_load_matrix(&L, "token_embd.weight", d->H, d->V, true, &d->embd, err) ||
        ilm_load_matrix(&L, pre, 2 * (int64_t)d->Ht, d->H, true, &d->pre, err) ||
        ilm_load_matrix(&L, post, d->H, d->Ht, true, &d->post, err) ||
        ilm_load_vec(&L, "output_norm.weight", d->H, true, &d->out_norm, err) || load_layers(d, &L, err) ||
        load_centroids(d, &L, err) || ilm_weights_pack(drafter_weights, d, pool, err))
        goto fail;
    // scratch
    int mk = d->max_k > 2 * d->Ht ? d->max_k : 2 * d->Ht;
    if (mk < d->H) mk = d->H;
    d->max_k = mk;
    d->scores_len = target->n_ctx_train > 0 ? (size_t)target->n_ctx_train + 16 : (size_t)1 << 20;
    size_t f4 = sizeof(float);
    d->scores = calloc(d->scores_len * (size_t)ilm_pool_size(pool), f4);  // one row per thread
    d->cscore = calloc((size_t)(d->n_centroids + 1), f4);
    d->cand = calloc((size_t)(d->top_k * d->bucket + 1), f4);
    d->selc = calloc((size_t)(d->top_k + 1), sizeof(int));
    d->cand_rows = calloc((size_t)ilm_pool_size(pool) * (size_t)(d->bucket + 1) * (size_t)d->H, f4);
    if (!d->scores || !d->cscore || !d->cand || !d->selc || !d->cand_rows) {
        ilm_fail(err, "out of memory");
        goto fail;
    }
    if (ilm_drafter_reserve(d, 1, err)) goto fail;
    snprintf(d->desc, sizeof d->desc, "%s drafter: %d layers, hidden %d, backbone %d, %s head", d->arch, d->n_layer,
             d->H, d->Ht, d->n_centroids ? "centroid" : "full tied");
    *out = d;
    return 0;
fail:
    ilm_drafter_free(d);
    return -1;
}

// Per-row scratch for nb rows (row r of a buffer at r times its row length).
int ilm_drafter_reserve(ilm_drafter *d, int nb, ilm_err *err) {
    if (nb <= d->nb) return 0;
    const int mk = d->max_k, H = d->H, Ht = d->Ht, V = d->V;
    const size_t n = (size_t)nb, f4 = sizeof(float);
    float **bufs[] = {&d->xin, &d->x, &d->a, &d->q, &d->att, &d->o, &d->gbuf, &d->ubuf, &d->y, &d->logits, &d->probs,
                      &d->cs_swa, &d->cs_full, &d->chain_g};
    const size_t lens[] = {(size_t)2 * Ht, (size_t)H, (size_t)mk, (size_t)mk, (size_t)mk, (size_t)H, (size_t)mk,
                           (size_t)mk, (size_t)H, (size_t)V, (size_t)V, (size_t)d->t->n_rot_swa + 1,
                           (size_t)d->t->n_rot_full + 1, (size_t)2 * Ht};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        float *p = calloc(n * lens[i], f4);
        if (!p) return ilm_fail(err, "out of memory (drafter scratch for %d rows)", nb);
        free(*bufs[i]);
        *bufs[i] = p;
    }
    ilm_q8a *qa = calloc(1, ilm_act_scratch_bytes(nb, mk));
    if (!qa) return ilm_fail(err, "out of memory (drafter scratch for %d rows)", nb);
    free(d->qa);
    d->qa = qa;
    d->nb = nb;
    return 0;
}

void ilm_drafter_free(ilm_drafter *d) {
    if (!d) return;
    ilm_weights_free(drafter_weights, d);
    void *ps[] = {d->xin, d->x, d->a, d->q, d->att, d->o, d->gbuf, d->ubuf, d->y, d->logits, d->probs, d->cs_swa,
                  d->cs_full, d->scores, d->cscore, d->cand, d->qa, d->bucket_tokens, d->chain_g, d->selc, d->cand_rows};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    ilm_model_free(d->own);
    free(d);
}

const char *ilm_drafter_describe(const ilm_drafter *d) { return d->desc; }

void ilm_drafter_emulate(ilm_drafter *d, enum ilm_drafter_attention mode) { d->emulate = mode; }

// y = W·x for n rows (x rows of W's input width, y rows ldy apart).
static void mm(ilm_drafter *d, const ilm_weight *w, const float *x, int n, float *y, int ldy) {
    ilm_matmul(d->pool, d->act, d->qa, w, x, n, y, ldy);
}

typedef struct {
    ilm_drafter *d;
    const ilm_kv *const *kvs;
    const draft_layer *ly;
    const int *pos, *hi;
    int n, window, n_rot, cs_len;
    const float *cs;          // [n][cs_len]
} heads_task;

// (row, head) pairs [n·nh·ith/nth, n·nh·(ith+1)/nth): q-norm, RoPE at the row's position,
// attention over the row's cache -> d->att.
static void heads_task_fn(void *ctx, int ith, int nth) {
    const heads_task *t = ctx;
    ilm_drafter *d = t->d;
    const draft_layer *ly = t->ly;
    const int hd = ly->hd, nh = ly->n_head, group = nh / ly->n_kv_head, qdim = nh * hd, total = t->n * nh;
    float *scores = d->scores + (size_t)ith * d->scores_len;
    for (int i = total * ith / nth; i < total * (ith + 1) / nth; i++) {
        const int r = i / nh, h = i % nh;
        float *q = d->q + (size_t)r * qdim + h * hd;
        ilm_k->rmsnorm(q, q, ly->q_norm, hd, d->eps);
        ilm_k->rope_neox(q, t->n_rot, t->cs + (size_t)r * t->cs_len);
        ilm_attend_head(t->kvs[r], ly->src, h / group, hd, ly->sliding, t->window, t->pos[r], t->hi[r], q, scores,
                        d->att + (size_t)r * qdim + h * hd);
    }
}

// Centroids [top_k·ith/nth, top_k·(ith+1)/nth) of d->selc: their tokens' rows of the tied
// embedding dequantized into this thread's scratch, then y · row -> d->cand.
static void candidates_task_fn(void *ctx, int ith, int nth) {
    ilm_drafter *d = ctx;
    const int H = d->H, B = d->bucket;
    const size_t rb = ilm_row_bytes(d->embd.m.type, H);
    float *rows = d->cand_rows + (size_t)ith * (size_t)B * (size_t)H;
    for (int k = d->top_k * ith / nth; k < d->top_k * (ith + 1) / nth; k++) {
        const int32_t *toks = d->bucket_tokens + (size_t)d->selc[k] * B;
        for (int j = 0; j < B; j++)
            ilm_k->dequant_row(d->embd.m.type, (const char *)d->embd.file_data + (size_t)toks[j] * rb,
                               rows + (size_t)j * H, H);
        ilm_k->attn_scores(d->ycur, rows, ILM_TYPE_F32, sizeof(float) * (size_t)H, B, H, d->cand + (size_t)k * B);
    }
}

// Centroid head (§4.4) for the row y: the top_k best centroids of c = W_centroids · y, exact
// logits for their tokens, every other token min − 1. Returns the argmax (lowest id on ties).
static int32_t centroid_head(ilm_drafter *d, const float *y, float *conf, float *logits) {
    mm(d, &d->centroids, y, 1, d->cscore, d->centroids.m.rows);
    int *selc = d->selc;
    ilm_topk(d->cscore, d->n_centroids, d->top_k, selc);  // best first: the candidates' order
    // the candidates' logits, centroid by centroid (on the pool for real heads: E2B has
    // 32 x 128 candidates of 256 elements)
    d->ycur = y;
    if ((size_t)d->top_k * (size_t)d->bucket * (size_t)d->H >= DRAFT_CAND_MACS_PER_DISPATCH)
        ilm_pool_run(d->pool, candidates_task_fn, d);
    else candidates_task_fn(d, 0, 1);
    float lmin = INFINITY, lmax = -INFINITY;
    int ncand = d->top_k * d->bucket;
    int32_t best = -1;
    for (int k = 0; k < d->top_k; k++)
        for (int j = 0; j < d->bucket; j++) {
            int32_t tk = d->bucket_tokens[selc[k] * d->bucket + j];
            float s = d->cand[k * d->bucket + j];
            if (s < lmin) lmin = s;
            if (s > lmax || (s == lmax && tk < best)) {
                lmax = s;
                best = tk;
            }
        }
    double sum = 0;
    for (int c = 0; c < ncand; c++) sum += exp((double)d->cand[c] - lmax);
    sum += (double)(d->V - ncand) * exp((double)lmin - 1.0 - lmax);
    if (conf) *conf = (float)(1.0 / sum);
    if (logits) {
        for (int i = 0; i < d->V; i++) logits[i] = lmin - 1.0f;
        for (int k = 0; k < d->top_k; k++)
            for (int j = 0; j < d->bucket; j++)
                logits[d->bucket_tokens[selc[k] * d->bucket + j]] = d->cand[k * d->bucket + j];
    }
    return best;
}

// Full tied head (§4.4) for row r of d->logits (computed for all rows at once): the argmax.
static int32_t tied_head(ilm_drafter *d, int r, float *conf, float *logits) {
    const float *lg = d->logits + (size_t)r * d->V;
    int32_t best = ilm_argmax(lg, d->V);
    if (conf) {  // the SIMD softmax (a double exp per token cost ~10% of a pyc80m step)
        memcpy(d->probs, lg, sizeof(float) * (size_t)d->V);
        ilm_k->softmax(d->probs, d->V);
        *conf = d->probs[best];
    }
    if (logits) memcpy(logits, lg, sizeof(float) * (size_t)d->V);
    return best;
}

int ilm_drafter_step_batch(ilm_drafter *d, int n, const ilm_kv *const *kvs, const int32_t *toks, const float *g,
                           const int *pos, float *g_next, int32_t *out, float *conf, float *logits) {
    const ilm_model *t = d->t;
    const int H = d->H, Ht = d->Ht, V = d->V;
    const int rs = t->n_rot_swa + 1, rf = t->n_rot_full + 1;  // RoPE table row lengths
    int hi[n > 0 ? n : 1];
    for (int r = 0; r < n; r++) {
        // x_r = W_pre · concat(E_target[tok_r]·sqrt(H_t), g_r)  [n][H]    (embedding first, §4.2)
        float *xin = d->xin + (size_t)r * 2 * Ht;
        ilm_embed_token(t, toks[r], xin);
        memcpy(xin + Ht, g + (size_t)r * Ht, sizeof(float) * (size_t)Ht);
        ilm_rope_table(d->cs_swa + (size_t)r * rs, pos[r], t->n_rot_swa, t->rope_base_swa, NULL);
        ilm_rope_table(d->cs_full + (size_t)r * rf, pos[r], t->n_rot_full, t->rope_base_full, t->rope_freqs);
        hi[r] = kvs[r]->n_pos - 1 < pos[r] ? kvs[r]->n_pos - 1 : pos[r];  // visible: cached positions <= pos
    }
    mm(d, &d->pre, d->xin, n, d->x, H);
    const int window = d->emulate == ILM_DRAFT_HF_ASSISTED ? t->window + 2 : t->window;
    for (int l = 0; l < d->n_layer; l++) {
        const draft_layer *ly = &d->layers[l];
        const int nh = ly->n_head, qdim = nh * ly->hd, F = ly->n_ff;
        const bool sw = ly->sliding;
        for (int r = 0; r < n; r++)  // a = RMSNorm(x, attn_norm) [n][H]
            ilm_k->rmsnorm(d->a + (size_t)r * H, d->x + (size_t)r * H, ly->attn_norm, H, d->eps);
        mm(d, &ly->wq, d->a, n, d->q, qdim);                          // q = W_q · a [n][nh·hd]
        // per (row, head) q = RoPE(RMSNorm(q, q_norm)), att = attention over the row's verifier
        // cache (§4.3) [n][nh·hd]; on the pool once the visible keys outweigh a dispatch (~1 µs)
        heads_task ht = {d, kvs, ly, pos, hi, n, window, sw ? t->n_rot_swa : t->n_rot_full, sw ? rs : rf,
                         sw ? d->cs_swa : d->cs_full};
        long keys = 0;
        for (int r = 0; r < n; r++) keys += sw && hi[r] + 1 > window ? window : hi[r] + 1;
        if (keys * nh >= DRAFT_KEYS_PER_DISPATCH) ilm_pool_run(d->pool, heads_task_fn, &ht);
        else heads_task_fn(&ht, 0, 1);
        mm(d, &ly->wo, d->att, n, d->o, H);                            // o = W_o · att [n][H]
        for (int r = 0; r < n; r++) {
            float *x = d->x + (size_t)r * H, *a = d->a + (size_t)r * H;
            ilm_add_normed(x, d->o + (size_t)r * H, ly->post_attn_norm, H, d->eps);  // x += RMSNorm(o, post_attention_norm)
            ilm_k->rmsnorm(a, x, ly->ffn_norm, H, d->eps);                          // a = RMSNorm(x, ffn_norm)
        }
        const ilm_weight *ws[2] = {&ly->gate, &ly->up};
        float *ys[2] = {d->gbuf, d->ubuf};
        int ld[2] = {F, F};
        ilm_matmul_shared(d->pool, d->act, d->qa, ws, ys, ld, 2, d->a, false, n);  // gate, up [n][F]
        for (int r = 0; r < n; r++)                                   // gate = gelu(gate) ⊙ up
            ilm_k->geglu(d->gbuf + (size_t)r * F, d->gbuf + (size_t)r * F, d->ubuf + (size_t)r * F, F);
        mm(d, &ly->down, d->gbuf, n, d->o, H);                        // o = W_down · gate [n][H]
        for (int r = 0; r < n; r++) {
            float *x = d->x + (size_t)r * H;
            ilm_add_normed(x, d->o + (size_t)r * H, ly->post_ffw_norm, H, d->eps);  // x += RMSNorm(o, post_ffw_norm)
            for (int i = 0; i < H; i++) x[i] *= ly->out_scale;                     // x *= layer_output_scale
        }
    }
    for (int r = 0; r < n; r++)  // y = RMSNorm(x, output_norm) [n][H]
        ilm_k->rmsnorm(d->y + (size_t)r * H, d->x + (size_t)r * H, d->out_norm, H, d->eps);
    if (g_next) mm(d, &d->post, d->y, n, g_next, Ht);               // g_next = W_post · y [n][H_t]
    // Head: no softcap on draft logits (§4.2).
    if (!d->n_centroids) mm(d, &d->embd, d->y, n, d->logits, V);
    for (int r = 0; r < n; r++) {
        float *c = conf ? conf + r : NULL, *lg = logits ? logits + (size_t)r * V : NULL;
        out[r] = d->n_centroids ? centroid_head(d, d->y + (size_t)r * H, c, lg) : tied_head(d, r, c, lg);
    }
    return 0;
}

int32_t ilm_drafter_step(ilm_drafter *d, const ilm_kv *kv, int32_t tok, const float *g, int pos, float *g_next,
                         float *conf, float *logits) {
    int32_t out;
    ilm_drafter_step_batch(d, 1, &kv, &tok, g, &pos, g_next, &out, conf, logits);
    return out;
}

int ilm_drafter_chains(ilm_drafter *d, int n, const ilm_kv *const *kvs, const int32_t *t0, const float *g0,
                       const int *pos, const int *len, const float *p_min, int32_t *drafts, int ld, int *count,
                       float *confs) {
    if (n > d->nb) return -1;
    const int Ht = d->Ht;
    // chain_g holds the conditioning vectors of the running chains, [n][H_t], and their
    // next ones, [n][H_t]; rows are compacted as chains end
    float *g = d->chain_g, *gn = g + (size_t)n * Ht;
    int idx[n > 0 ? n : 1], p[n > 0 ? n : 1];
    int32_t tok[n > 0 ? n : 1], out[n > 0 ? n : 1];
    float cf[n > 0 ? n : 1];
    const ilm_kv *kv[n > 0 ? n : 1];
    int m = 0, maxlen = 0;
    for (int i = 0; i < n; i++) {
        count[i] = 0;
        if (len[i] <= 0) continue;
        idx[m] = i;
        tok[m] = t0[i];
        p[m] = pos[i];
        kv[m] = kvs[i];
        memcpy(g + (size_t)m * Ht, g0 + (size_t)i * Ht, sizeof(float) * (size_t)Ht);
        m++;
        if (len[i] > maxlen) maxlen = len[i];
    }
    bool want_conf = confs != NULL;
    for (int i = 0; i < n; i++) want_conf |= len[i] > 0 && p_min[i] > 0;
    for (int k = 0; k < maxlen && m > 0; k++) {
        for (int r = 0; r < m; r++) cf[r] = 1.0f;  // only computed when something reads it
        bool more = false;
        for (int r = 0; r < m; r++) more |= k + 1 < len[idx[r]];
        ilm_drafter_step_batch(d, m, kv, tok, g, p, more ? gn : NULL, out, want_conf ? cf : NULL, NULL);
        int w = 0;
        for (int r = 0; r < m; r++) {
            const int i = idx[r];
            if (k > 0 && cf[r] < p_min[i]) continue;  // the first draft is always kept (§4.5)
            drafts[(size_t)i * ld + count[i]] = out[r];
            if (confs) confs[(size_t)i * ld + count[i]] = cf[r];
            count[i]++;
            if (cf[r] < p_min[i] || count[i] >= len[i]) continue;
            // keep this chain: its next input is its draft and g_next
            idx[w] = i;
            tok[w] = out[r];
            p[w] = p[r];
            kv[w] = kv[r];
            memmove(g + (size_t)w * Ht, gn + (size_t)r * Ht, sizeof(float) * (size_t)Ht);
            w++;
        }
        m = w;
    }
    return 0;
}

int ilm_drafter_chain(ilm_drafter *d, const ilm_kv *kv, int32_t t0, const float *g0, int pos, int n, float p_min,
                      int32_t *drafts, float *confs) {
    int count = 0;
    ilm_drafter_chains(d, 1, &kv, &t0, g0, &pos, &n, &p_min, drafts, 0, &count, confs);
    return count;
}
