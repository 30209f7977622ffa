// model.c — loads a Gemma 4 verifier (arch "gemma4") from GGUF: hyper-parameters
// (docs/gemma4.md §3.2, §3.9), every tensor with its shape checked (§3.3), KV-sharing
// sources (§1.3), and the packed kernel layout of each matrix. Also the loader pieces
// drafter.c shares (model.h): vector/matrix loading, metadata keys, layer field tables and
// the weight walkers that pack, count and free.
#include "model/model.h"
#include "runtime/placement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- loader helpers shared with drafter.c ---------------------------------------------------

static int own(ilm_model *m, float *p, ilm_err *err) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        float **o = realloc(m->owned_f32, sizeof *o * (size_t)cap);
        if (!o) return ilm_fail(err, "out of memory");
        m->owned_f32 = o;
        m->cap_owned = cap;
    }
    m->owned_f32[m->n_owned++] = p;
    return 0;
}

// Vectors (norm weights, scales, rope divisors) are small: every value is checked at load, so a
// NaN or Inf in one is named here instead of surfacing as garbage logits. rope_freqs may hold
// +Inf (a 1e30 "no rotation" divisor stored as f16 overflows; it means the same).
static int check_finite(ilm_loader *L, const char *name, const float *v, int64_t n, ilm_err *err) {
    const bool inf_ok = !strcmp(name, "rope_freqs.weight");
    for (int64_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, v + i, sizeof x);
        if (isnan(x) || (isinf(x) && !(inf_ok && x > 0)))
            return ilm_fail(err, "%s: tensor %s: element %lld is %s (a broken conversion or a corrupted file)", L->path,
                            name, (long long)i, isnan(x) ? "NaN" : "infinite");
    }
    return 0;
}

int ilm_load_vec(ilm_loader *L, const char *name, int64_t n, bool required, const float **out, ilm_err *err) {
    *out = NULL;
    const ilm_gguf_tensor *t = ilm_gguf_find_tensor(L->g, name);
    if (!t) return required ? ilm_fail(err, "%s: missing tensor %s", L->path, name) : 0;
    int64_t count = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (t->n_dims > 1 && !(t->n_dims == 2 && t->ne[1] == 1))
        return ilm_fail(err, "%s: tensor %s: expected a vector of %lld (shape has %d dims)", L->path, name,
                        (long long)n, t->n_dims);
    if (count != n)
        return ilm_fail(err, "%s: tensor %s: expected %lld elements (%lld)", L->path, name, (long long)n,
                        (long long)count);
    if (t->type == ILM_TYPE_F32) {
        *out = t->data;
        return check_finite(L, name, t->data, n, err);
    }
    if (!ilm_type(t->type)->weight)
        return ilm_fail(err, "%s: tensor %s: unsupported type for a vector (%s)", L->path, name,
                        ilm_ggml_type_name(t->type));
    float *v = ilm_malloc(sizeof(float) * (size_t)n, err);
    if (!v || own(L->m, v, err)) {
        free(v);
        return -1;
    }
    ilm_k->dequant_row(t->type, t->data, v, (int)n);
    *out = v;
    return check_finite(L, name, v, n, err);
}

int ilm_load_vec_copy(ilm_loader *L, const char *name, int64_t n, bool required, float **out, ilm_err *err) {
    const float *v;
    *out = NULL;
    if (ilm_load_vec(L, name, n, required, &v, err)) return -1;
    if (!v) return 0;
    float *c = ilm_malloc(sizeof(float) * (size_t)n, err);
    if (!c || own(L->m, c, err)) {
        free(c);
        return -1;
    }
    memcpy(c, v, sizeof(float) * (size_t)n);
    *out = c;
    return 0;
}

int ilm_load_matrix(ilm_loader *L, const char *name, int64_t cols, int64_t rows, bool required, ilm_weight *w,
                    ilm_err *err) {
    memset(w, 0, sizeof *w);
    const ilm_gguf_tensor *t = ilm_gguf_find_tensor(L->g, name);
    if (!t) return required ? ilm_fail(err, "%s: missing tensor %s", L->path, name) : 0;
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return ilm_fail(err, "%s: tensor %s: shape [%lld, %lld, %lld] does not match the hyper-parameters [%lld, %lld]",
                        L->path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)cols, (long long)rows);
    if (!ilm_type(t->type)->weight)
        return ilm_fail(err, "%s: tensor %s: unsupported weight type %s", L->path, name, ilm_ggml_type_name(t->type));
    w->t = t;
    w->m = (ilm_matrix){t->type, (int)rows, (int)cols, t->data};
    w->file_data = t->data;
    return 0;
}

typedef struct {
    const ilm_weight *w;
} pack_ctx;

static void pack_fill(void *ctx, void *dst, int ith, int nth) {
    const ilm_weight *w = ((pack_ctx *)ctx)->w;
    int r0, r1;
    ilm_split_rows(w->m.rows, ilm_k->interleave, ith, nth, &r0, &r1);
    if (r1 > r0) ilm_k->pack(w->m.type, w->file_data, w->m.rows, w->m.cols, dst, r0, r1);
}

int ilm_weight_pack(ilm_weight *w, ilm_pool *pool, ilm_err *err) {
    if (!w->file_data || ilm_k->interleave <= 1) return 0;
    size_t bytes = ilm_k->packed_size(w->m.type, w->m.rows, w->m.cols);
    if (!bytes) return ilm_fail(err, "kernel set %s cannot pack %s weights", ilm_k->name, ilm_ggml_type_name(w->m.type));
    pack_ctx pc = {w};
    if (ilm_placed_alloc(pool, &w->placed, bytes, pack_fill, &pc, err)) return -1;
    w->m.data = w->placed.copy[0];
    return 0;
}

void ilm_weight_free(ilm_weight *w) {
    if (w->placed.n_copies) ilm_placed_free(&w->placed);
    memset(&w->placed, 0, sizeof w->placed);
}

// --- layer field tables (model.h) -------------------------------------------------------------

int ilm_load_fields(ilm_loader *L, int blk, const ilm_layer_field *f, size_t n, unsigned flags,
                    const int64_t dim[ILM_N_DIMS], void *layer, ilm_err *err) {
    char name[128];
    for (size_t i = 0; i < n; i++, f++) {
        if (f->when && !(f->when & flags)) continue;
        snprintf(name, sizeof name, "blk.%d.%s", blk, f->suffix);
        void *p = (char *)layer + f->offset;
        const int64_t cols = dim[f->cols];
        const float *v;
        int rc = 0;
        switch (f->kind) {
        case ILM_FIELD_VEC: rc = ilm_load_vec(L, name, cols, f->required, (const float **)p, err); break;
        case ILM_FIELD_VEC_COPY: rc = ilm_load_vec_copy(L, name, cols, f->required, (float **)p, err); break;
        case ILM_FIELD_SCALAR:
            rc = ilm_load_vec(L, name, 1, f->required, &v, err);
            *(float *)p = v ? v[0] : 1.0f;
            break;
        case ILM_FIELD_MATRIX: rc = ilm_load_matrix(L, name, cols, dim[f->rows], f->required, p, err); break;
        }
        if (rc) return -1;
    }
    return 0;
}

int ilm_walk_weights(ilm_weight *const *globals, size_t n_globals, const ilm_layer_field *f, size_t n_fields,
                     void *layers, size_t stride, int n_layers, ilm_weight_fn fn, void *ctx) {
    int rc = 0;
    for (size_t i = 0; i < n_globals && !rc; i++) rc = fn(globals[i], ctx);
    for (int l = 0; l < n_layers && !rc; l++)
        for (size_t i = 0; i < n_fields && !rc; i++)
            if (f[i].kind == ILM_FIELD_MATRIX) rc = fn((ilm_weight *)((char *)layers + stride * l + f[i].offset), ctx);
    return rc;
}

typedef struct {
    ilm_pool *pool;
    ilm_err *err;
} pack_job;

static int pack_one(ilm_weight *w, void *ctx) {
    pack_job *j = ctx;
    return ilm_weight_pack(w, j->pool, j->err);
}

int ilm_weights_pack(ilm_weight_walker walk, void *model, ilm_pool *pool, ilm_err *err) {
    pack_job j = {pool, err};
    return walk(model, pack_one, &j) ? -1 : 0;
}

static int add_bytes(ilm_weight *w, void *ctx) {
    if (w->placed.n_copies) *(size_t *)ctx += w->placed.bytes * (size_t)w->placed.n_copies;
    return 0;
}

size_t ilm_weights_packed_bytes(ilm_weight_walker walk, void *model) {
    size_t total = 0;
    walk(model, add_bytes, &total);
    return total;
}

static int free_one(ilm_weight *w, void *ctx) {
    (void)ctx;
    ilm_weight_free(w);
    return 0;
}

void ilm_weights_free(ilm_weight_walker walk, void *model) { walk(model, free_one, NULL); }

// --- hyper-parameters -------------------------------------------------------------------------

const char *ilm_loader_key(ilm_loader *L, const char *suffix) {
    snprintf(L->key, sizeof L->key, "%s.%s", L->arch, suffix);
    return L->key;
}

static int check_range(ilm_loader *L, const char *what, long long v, long long lo, long long hi, ilm_err *err) {
    if (v < lo || v > hi) return ilm_fail(err, "%s: %s out of range (%lld)", L->path, what, v);
    return 0;
}

// Sliding-window pattern: array of bools (true = sliding), required.
static int load_pattern(ilm_loader *L, int n_layer, bool *sliding, ilm_err *err) {
    const char *key = ilm_loader_key(L, "attention.sliding_window_pattern");
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(L->g, key);
    if (!kv) return ilm_fail(err, "%s: missing metadata key %s", L->path, key);
    if (kv->val.type != GGUF_ARRAY || kv->val.arr.elem_type == GGUF_STRING || kv->val.arr.elem_type == GGUF_ARRAY)
        return ilm_fail(err, "%s: key %s: expected a bool array", L->path, key);
    if (kv->val.arr.count != (uint64_t)n_layer)
        return ilm_fail(err, "%s: key %s: expected %d entries (%llu)", L->path, key, n_layer,
                        (unsigned long long)kv->val.arr.count);
    for (int i = 0; i < n_layer; i++) sliding[i] = ilm_gguf_arr_int(&kv->val, (uint64_t)i) != 0;
    return 0;
}

static int load_hparams(ilm_loader *L, ilm_model *m, int32_t *n_head, int32_t *n_kv, int32_t *n_ff, bool *sliding,
                        ilm_err *err) {
    const ilm_gguf *g = L->g;
    uint32_t u;
#define KEY(s) ilm_loader_key(L, s)
    if (ilm_gguf_get_u32(g, KEY("block_count"), &u, err)) return -1;
    if (check_range(L, "block_count", u, 1, ILM_MAX_LAYERS, err)) return -1;
    m->n_layer = (int)u;
    if (ilm_gguf_get_u32(g, KEY("embedding_length"), &u, err) || check_range(L, "embedding_length", u, 8, 65536, err))
        return -1;
    m->n_embd = (int)u;
    if (ilm_gguf_get_u32_or(g, KEY("context_length"), 8192, &u, err)) return -1;
    m->n_ctx_train = (int)(u > 0x7fffffff ? 0x7fffffff : u);
    if (ilm_gguf_get_u32_per_layer(g, KEY("attention.head_count"), m->n_layer, n_head, err)) return -1;
    if (ilm_gguf_find_kv(g, KEY("attention.head_count_kv"))) {
        if (ilm_gguf_get_u32_per_layer(g, KEY("attention.head_count_kv"), m->n_layer, n_kv, err)) return -1;
    } else memcpy(n_kv, n_head, sizeof *n_kv * (size_t)m->n_layer);
    uint32_t kl, vl, kls, vls;
    if (ilm_gguf_get_u32(g, KEY("attention.key_length"), &kl, err) ||
        ilm_gguf_get_u32_or(g, KEY("attention.value_length"), kl, &vl, err) ||
        ilm_gguf_get_u32_or(g, KEY("attention.key_length_swa"), kl, &kls, err) ||
        ilm_gguf_get_u32_or(g, KEY("attention.value_length_swa"), kls, &vls, err))
        return -1;
    if (kl != vl || kls != vls)
        return ilm_fail(err, "%s: key_length != value_length (%u/%u, swa %u/%u)", L->path, kl, vl, kls, vls);
    if (check_range(L, "attention.key_length", kl, 2, 4096, err) ||
        check_range(L, "attention.key_length_swa", kls, 2, 4096, err))
        return -1;
    if (kl % 2 || kls % 2) return ilm_fail(err, "%s: head dims must be even (%u, %u)", L->path, kl, kls);
    m->hd_full = (int)kl;
    m->hd_swa = (int)kls;
    m->max_hd = m->hd_full > m->hd_swa ? m->hd_full : m->hd_swa;
    if (ilm_gguf_get_u32_or(g, KEY("rope.dimension_count"), kl, &u, err)) return -1;
    m->n_rot_full = (int)u;
    if (ilm_gguf_get_u32_or(g, KEY("rope.dimension_count_swa"), kls, &u, err)) return -1;
    m->n_rot_swa = (int)u;
    if (m->n_rot_full > m->hd_full || m->n_rot_swa > m->hd_swa || m->n_rot_full % 2 || m->n_rot_swa % 2 ||
        m->n_rot_full <= 0 || m->n_rot_swa <= 0)
        return ilm_fail(err, "%s: bad rope dimension count (%d, swa %d)", L->path, m->n_rot_full, m->n_rot_swa);
    if (ilm_gguf_get_f32(g, KEY("attention.layer_norm_rms_epsilon"), &m->eps, err)) return -1;
    if (!(m->eps >= 0 && m->eps < 1)) return ilm_fail(err, "%s: bad rms epsilon (%g)", L->path, (double)m->eps);
    if (ilm_gguf_get_u32(g, KEY("attention.sliding_window"), &u, err) ||
        check_range(L, "sliding_window", u, 1, 1 << 24, err))
        return -1;
    m->window = (int)u;
    if (load_pattern(L, m->n_layer, sliding, err)) return -1;
    if (ilm_gguf_get_f32(g, KEY("rope.freq_base"), &m->rope_base_full, err) ||
        ilm_gguf_get_f32_or(g, KEY("rope.freq_base_swa"), 10000.0f, &m->rope_base_swa, err))
        return -1;
    if (!(m->rope_base_full > 1) || !(m->rope_base_swa > 1))
        return ilm_fail(err, "%s: bad rope base (%g, swa %g)", L->path, (double)m->rope_base_full,
                        (double)m->rope_base_swa);
    if (ilm_gguf_get_f32_or(g, KEY("final_logit_softcapping"), 30.0f, &m->softcap, err)) return -1;
    if (ilm_gguf_get_u32_or(g, KEY("attention.shared_kv_layers"), 0, &u, err)) return -1;
    if (u >= (uint32_t)m->n_layer && u != 0)
        return ilm_fail(err, "%s: shared_kv_layers (%u) must be below block_count (%d)", L->path, u, m->n_layer);
    m->n_shared_kv = (int)u;
    if (ilm_gguf_get_u32_or(g, KEY("embedding_length_per_layer_input"), 0, &u, err) ||
        check_range(L, "embedding_length_per_layer_input", u, 0, 65536, err))
        return -1;
    m->ple_dim = (int)u;
    if (ilm_gguf_get_u32_or(g, KEY("expert_count"), 0, &u, err) || check_range(L, "expert_count", u, 0, 4096, err))
        return -1;
    m->n_expert = (int)u;
    if (ilm_gguf_get_u32_or(g, KEY("expert_used_count"), 0, &u, err) ||
        check_range(L, "expert_used_count", u, 0, m->n_expert, err))
        return -1;
    m->n_expert_used = (int)u;
    if (m->n_expert && !m->n_expert_used) return ilm_fail(err, "%s: expert_used_count missing or 0", L->path);
    if (ilm_gguf_get_u32_or(g, KEY("expert_feed_forward_length"), 0, &u, err)) return -1;
    m->n_ff_exp = (int)u;
    if (ilm_gguf_get_u32_per_layer(g, KEY("feed_forward_length"), m->n_layer, n_ff, err)) return -1;
    for (int i = 0; i < m->n_layer; i++) {
        if (check_range(L, "attention.head_count", n_head[i], 1, 1024, err) ||
            check_range(L, "attention.head_count_kv", n_kv[i], 1, n_head[i], err) ||
            check_range(L, "feed_forward_length", n_ff[i], 1, 1 << 20, err))
            return -1;
        if (n_head[i] % n_kv[i])
            return ilm_fail(err, "%s: layer %d: head_count (%d) not a multiple of head_count_kv (%d)", L->path, i,
                            n_head[i], n_kv[i]);
    }
#undef KEY
    m->emb_scale = sqrtf((float)m->n_embd);
    return 0;
}

// --- verifier ---------------------------------------------------------------------------------

// A verifier layer's tensors in lookup order (docs/gemma4.md §3.3). Q = heads·hd,
// KV = KV heads·hd, FF = the layer's dense MLP width (E2B has double-wide layers).
enum { OWNS_KV = 1, PLE = 2, MOE = 4 };
#define F(...) ILM_FIELD(ilm_layer, __VA_ARGS__)
static const ilm_layer_field layer_fields[] = {
    F(VEC,      "attn_norm.weight",           attn_norm,       H,  1,  true,  0),
    F(MATRIX,   "attn_q.weight",              wq,              H,  Q,  true,  0),
    F(VEC,      "attn_q_norm.weight",         q_norm,          HD, 1,  true,  0),
    F(MATRIX,   "attn_output.weight",         wo,              Q,  H,  true,  0),
    F(VEC,      "post_attention_norm.weight", post_attn_norm,  H,  1,  true,  0),
    F(VEC,      "post_ffw_norm.weight",       post_ffw_norm,   H,  1,  true,  0),
    F(VEC,      "ffn_norm.weight",            ffn_norm,        H,  1,  true,  0),
    F(MATRIX,   "attn_k.weight",              wk,              H,  KV, true,  OWNS_KV),
    F(VEC,      "attn_k_norm.weight",         k_norm,          HD, 1,  true,  OWNS_KV),
    F(MATRIX,   "attn_v.weight",              wv,              H,  KV, false, OWNS_KV),  // absent: V = K
    F(MATRIX,   "ffn_gate.weight",            ffn_gate,        H,  FF, true,  0),
    F(MATRIX,   "ffn_up.weight",              ffn_up,          H,  FF, true,  0),
    F(MATRIX,   "ffn_down.weight",            ffn_down,        FF, H,  true,  0),
    F(SCALAR,   "layer_output_scale.weight",  out_scale,       1,  1,  false, 0),
    F(MATRIX,   "inp_gate.weight",            inp_gate,        H,  P,  true,  PLE),
    F(MATRIX,   "proj.weight",                proj,            P,  H,  true,  PLE),
    F(VEC,      "post_norm.weight",           ple_post_norm,   H,  1,  true,  PLE),
    F(MATRIX,   "ffn_gate_inp.weight",        router,          H,  E,  true,  MOE),
    F(VEC_COPY, "ffn_gate_inp.scale",         router_scale,    H,  1,  true,  MOE),
    F(VEC,      "ffn_down_exps.scale",        expert_scale,    E,  1,  false, MOE),
    F(VEC,      "pre_ffw_norm_2.weight",      pre_ffw_norm_2,  H,  1,  true,  MOE),
    F(VEC,      "post_ffw_norm_1.weight",     post_ffw_norm_1, H,  1,  true,  MOE),
    F(VEC,      "post_ffw_norm_2.weight",     post_ffw_norm_2, H,  1,  true,  MOE),
};
#undef F
#define N_LAYER_FIELDS (sizeof layer_fields / sizeof layer_fields[0])

static int load_layer(ilm_loader *L, ilm_model *m, int i, ilm_err *err) {
    ilm_layer *ly = &m->layers[i];
    const int H = m->n_embd, hd = ly->hd;
    const int64_t dim[ILM_N_DIMS] = {[ILM_DIM_1] = 1, [ILM_DIM_H] = H, [ILM_DIM_Q] = (int64_t)ly->n_head * hd,
                                     [ILM_DIM_KV] = (int64_t)ly->n_kv_head * hd, [ILM_DIM_HD] = hd,
                                     [ILM_DIM_FF] = ly->n_ff, [ILM_DIM_P] = m->ple_dim, [ILM_DIM_E] = m->n_expert};
    const unsigned flags = (ly->owns_kv ? OWNS_KV : 0) | (m->ple_dim ? PLE : 0) | (m->n_expert ? MOE : 0);
    if (ilm_load_fields(L, i, layer_fields, N_LAYER_FIELDS, flags, dim, ly, err)) return -1;
    if (m->n_expert) {
        const int E = m->n_expert, Fe = m->n_ff_exp;
        // docs/gemma4.md §2.5: the GGUF router scale is unscaled; fold 1/sqrt(H) in once, here.
        for (int k = 0; k < H; k++) ly->router_scale[k] = ly->router_scale[k] / sqrtf((float)H);
        char n[128];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", i, s), n)
        const ilm_gguf_tensor *gu = ilm_gguf_find_tensor(L->g, NAME("ffn_gate_up_exps.weight"));
        if (!gu) return ilm_fail(err, "%s: missing tensor %s", L->path, n);
        if (gu->n_dims != 3 || gu->ne[0] != H || gu->ne[1] != 2 * Fe || gu->ne[2] != E)
            return ilm_fail(err, "%s: tensor %s: shape [%lld, %lld, %lld] does not match [%d, %d, %d]", L->path, n,
                            (long long)gu->ne[0], (long long)gu->ne[1], (long long)gu->ne[2], H, 2 * Fe, E);
        const ilm_gguf_tensor *dn = ilm_gguf_find_tensor(L->g, NAME("ffn_down_exps.weight"));
        if (!dn) return ilm_fail(err, "%s: missing tensor %s", L->path, n);
        if (dn->n_dims != 3 || dn->ne[0] != Fe || dn->ne[1] != H || dn->ne[2] != E)
            return ilm_fail(err, "%s: tensor %s: shape [%lld, %lld, %lld] does not match [%d, %d, %d]", L->path, n,
                            (long long)dn->ne[0], (long long)dn->ne[1], (long long)dn->ne[2], Fe, H, E);
        if (!ilm_type(gu->type)->weight || !ilm_type(dn->type)->weight)
            return ilm_fail(err, "%s: layer %d: unsupported expert weight type", L->path, i);
        ly->exp_gate_up = calloc((size_t)E, sizeof *ly->exp_gate_up);
        ly->exp_down = calloc((size_t)E, sizeof *ly->exp_down);
        if (!ly->exp_gate_up || !ly->exp_down) return ilm_fail(err, "out of memory");
        size_t gu_bytes = gu->bytes / (size_t)E, dn_bytes = dn->bytes / (size_t)E;
        for (int e = 0; e < E; e++) {
            ly->exp_gate_up[e] = (ilm_weight){.t = gu, .m = {gu->type, 2 * Fe, H, (const char *)gu->data + e * gu_bytes}};
            ly->exp_gate_up[e].file_data = ly->exp_gate_up[e].m.data;
            ly->exp_down[e] = (ilm_weight){.t = dn, .m = {dn->type, H, Fe, (const char *)dn->data + e * dn_bytes}};
            ly->exp_down[e].file_data = ly->exp_down[e].m.data;
        }
    }
#undef NAME
    return 0;
}

// Every packed matrix: the globals (per_layer_token_embd is only read row by row, in the
// file layout, so it is not among them), each layer's table fields, the experts.
static int model_weights(void *model, ilm_weight_fn fn, void *ctx) {
    ilm_model *m = model;
    ilm_weight *const globals[] = {&m->tok_embd, &m->output, &m->ple_model_proj};
    int rc = ilm_walk_weights(globals, sizeof globals / sizeof globals[0], layer_fields, N_LAYER_FIELDS, m->layers,
                              sizeof m->layers[0], m->n_layer, fn, ctx);
    for (int i = 0; i < m->n_layer && !rc; i++) {
        ilm_layer *ly = &m->layers[i];
        for (int e = 0; ly->exp_gate_up && ly->exp_down && e < m->n_expert && !rc; e++)
            if (!(rc = fn(&ly->exp_gate_up[e], ctx))) rc = fn(&ly->exp_down[e], ctx);
    }
    return rc;
}

int ilm_model_load(ilm_model **out, const char *path, ilm_pool *pool, ilm_err *err) {
    ilm_model *m = calloc(1, sizeof *m);
    if (!m) return ilm_fail(err, "out of memory");
    if (ilm_gguf_open(&m->gguf, path, err)) {
        free(m);
        return -1;
    }
    if (m->gguf->n_tensors == 0) {
        ilm_fail(err, "%s: has no tensors: a vocabulary-only file (tokenize/detokenize/inspect take it; run needs a model)",
                 path);
        goto fail;
    }
    char *arch = NULL;
    if (ilm_gguf_get_str(m->gguf, "general.architecture", &arch, err)) goto fail;
    if (strcmp(arch, "gemma4") != 0) {
        ilm_fail(err, "%s: unsupported architecture '%s' (expected gemma4)", path, arch);
        free(arch);
        goto fail;
    }
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    free(arch);
    ilm_loader L = {.g = m->gguf, .m = m, .path = path, .arch = m->arch};
    int32_t n_head[ILM_MAX_LAYERS], n_kv[ILM_MAX_LAYERS], n_ff[ILM_MAX_LAYERS];
    bool sliding[ILM_MAX_LAYERS];
    if (load_hparams(&L, m, n_head, n_kv, n_ff, sliding, err)) goto fail;

    const ilm_gguf_tensor *te = ilm_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) {
        ilm_fail(err, "%s: missing tensor token_embd.weight", path);
        goto fail;
    }
    m->n_vocab = (int)te->ne[1];
    const ilm_gguf_kv *toks = ilm_gguf_find_kv(m->gguf, "tokenizer.ggml.tokens");
    if (toks && toks->val.type == GGUF_ARRAY && toks->val.arr.count != (uint64_t)m->n_vocab) {
        ilm_fail(err, "%s: token_embd.weight has %d rows but the vocabulary has %llu tokens", path, m->n_vocab,
                 (unsigned long long)toks->val.arr.count);
        goto fail;
    }
    if (m->n_vocab < 1 || te->ne[1] > (1 << 24)) {
        ilm_fail(err, "%s: vocabulary size out of range (%lld)", path, (long long)te->ne[1]);
        goto fail;
    }
    if (ilm_load_matrix(&L, "token_embd.weight", m->n_embd, m->n_vocab, true, &m->tok_embd, err) ||
        ilm_load_matrix(&L, "output.weight", m->n_embd, m->n_vocab, false, &m->output, err) ||
        ilm_load_vec(&L, "output_norm.weight", m->n_embd, true, &m->output_norm, err))
        goto fail;

    // Per-layer structure. KV sharing: layer i owns K/V iff i < L - n_shared; a shared layer
    // reads the last owning layer of its type (docs/gemma4.md §1.3).
    const int first_shared = m->n_layer - m->n_shared_kv;
    for (int i = 0; i < m->n_layer; i++) {
        ilm_layer *ly = &m->layers[i];
        ly->sliding = sliding[i];
        ly->hd = sliding[i] ? m->hd_swa : m->hd_full;
        ly->n_head = n_head[i];
        ly->n_kv_head = n_kv[i];
        ly->n_ff = n_ff[i];
        ly->owns_kv = i < first_shared;
        ly->kv_src = i;
        if (!ly->owns_kv) {
            ly->kv_src = -1;
            for (int j = first_shared - 1; j >= 0; j--)
                if (sliding[j] == sliding[i]) {
                    ly->kv_src = j;
                    break;
                }
            if (ly->kv_src < 0) {
                ilm_fail(err, "%s: layer %d shares KV but no earlier layer of its type owns a cache", path, i);
                goto fail;
            }
            if (m->layers[ly->kv_src].n_kv_head != ly->n_kv_head) {
                ilm_fail(err, "%s: layer %d: KV heads (%d) differ from its source layer %d (%d)", path, i,
                         ly->n_kv_head, ly->kv_src, m->layers[ly->kv_src].n_kv_head);
                goto fail;
            }
        }
    }
    for (int i = 0; i < m->n_layer; i++)
        if (load_layer(&L, m, i, err)) goto fail;

    // rope_freqs: frequency divisors of the full layers (proportional RoPE, §2.6).
    const ilm_gguf_tensor *rf = ilm_gguf_find_tensor(m->gguf, "rope_freqs.weight");
    if (rf) {
        if (ilm_load_vec_copy(&L, "rope_freqs.weight", m->n_rot_full / 2, true, &m->rope_freqs, err)) goto fail;
        for (int i = 0; i < m->n_rot_full / 2; i++)
            if (!(m->rope_freqs[i] > 0)) {
                ilm_fail(err, "%s: rope_freqs.weight[%d] must be positive (%g)", path, i, (double)m->rope_freqs[i]);
                goto fail;
            }
    }
    if (m->ple_dim) {
        int64_t PL = (int64_t)m->ple_dim * m->n_layer;
        if (ilm_load_matrix(&L, "per_layer_token_embd.weight", PL, m->n_vocab, true, &m->ple_tok_embd, err) ||
            ilm_load_matrix(&L, "per_layer_model_proj.weight", m->n_embd, PL, true, &m->ple_model_proj, err) ||
            ilm_load_vec(&L, "per_layer_proj_norm.weight", m->ple_dim, true, &m->ple_proj_norm, err))
            goto fail;
    }
    const ilm_gguf_kv *sup = ilm_gguf_find_kv(m->gguf, "tokenizer.ggml.suppress_tokens");
    if (sup && sup->val.type == GGUF_ARRAY && sup->val.arr.elem_type != GGUF_STRING &&
        sup->val.arr.elem_type != GGUF_ARRAY && sup->val.arr.count < (1u << 20)) {
        m->n_suppress = (int)sup->val.arr.count;
        m->suppress_tokens = ilm_malloc(sizeof(int32_t) * (size_t)(m->n_suppress + 1), err);
        if (!m->suppress_tokens) goto fail;
        for (int i = 0; i < m->n_suppress; i++) {
            int64_t id = ilm_gguf_arr_int(&sup->val, (uint64_t)i);
            if (id < 0 || id >= m->n_vocab) {
                ilm_fail(err, "%s: suppress_tokens id out of range (%lld)", path, (long long)id);
                goto fail;
            }
            m->suppress_tokens[i] = (int32_t)id;
        }
    }
    if (ilm_weights_pack(model_weights, m, pool, err)) goto fail;
    m->packed_bytes = ilm_weights_packed_bytes(model_weights, m);
    *out = m;
    return 0;
fail:
    ilm_model_free(m);
    return -1;
}

void ilm_model_free(ilm_model *m) {
    if (!m) return;
    ilm_weights_free(model_weights, m);
    for (int i = 0; i < m->n_layer; i++) {
        ilm_layer *ly = &m->layers[i];
        free(ly->exp_gate_up);
        free(ly->exp_down);
    }
    for (int i = 0; i < m->n_owned; i++) free(m->owned_f32[i]);
    free(m->owned_f32);
    free(m->suppress_tokens);
    ilm_gguf_close(m->gguf);
    free(m);
}
