// synth_plan.c — what a synth file holds: the variant tables of docs/gemma4.md §1.1–1.4
// become a list of tensor specs (names and shapes of §3.3 / §3.4), each with its file type
// and the rule its random weights follow (synth_write.c generates them).
//
// --layers N keeps the first N layers with the variant's S/F pattern. For the KV-sharing
// models (E2B, E4B) the shared count scales with N — round(N * n_shared / L) — but layers
// 0 .. first full layer always own K/V, so both layer types have an owner to share from;
// on E2B the double-wide MLP goes with the shared layers, as in the real model.
#include "tools/synth_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/kernels.h"
#include "tools/quantize.h"

// ---- variants (docs/gemma4.md §1.1, §1.2) ----------------------------------------------

static const synth_variant VARIANTS[] = {
    {"e2b", "E2B", 35, 1536, 6144, 8, 1, 1, 512, 5, 20, 256, false, true, 131072, true, 0, 0, 0, 256, 2048, 4, true},
    {"e4b", "E4B", 42, 2560, 10240, 8, 2, 2, 512, 6, 18, 256, false, false, 131072, true, 0, 0, 0, 256, 2048, 4, true},
    {"12b", "12B", 48, 3840, 15360, 16, 8, 1, 1024, 6, 0, 0, true, false, 262144, false, 0, 0, 0, 1024, 8192, 16, false},
    {"26b-a4b", "26B-A4B", 30, 2816, 2112, 16, 8, 2, 1024, 6, 0, 0, true, false, 262144, false, 128, 8, 704, 1024, 8192, 16,
     false},
    {"31b", "31B", 60, 5376, 21504, 32, 16, 4, 1024, 6, 0, 0, true, false, 262144, false, 0, 0, 0, 1024, 8192, 32, false},
};

static void plan_model(synth_model *p, const synth_variant *v, int layers, int vocab) {
    memset(p, 0, sizeof *p);
    p->v = v;
    p->V = vocab;
    p->L = layers > 0 && layers < v->L ? layers : v->L;
    int first_full = v->period - 1;
    p->n_shared = 0;
    if (v->n_shared > 0) {
        int scaled = (int)((double)p->L * v->n_shared / v->L + 0.5);
        int most = p->L - (first_full + 1);
        p->n_shared = scaled < most ? scaled : (most > 0 ? most : 0);
    }
    for (int i = 0; i < p->L; i++) {
        p->sliding[i] = (i + 1) % v->period != 0;
        bool shared = i >= p->L - p->n_shared;
        p->F[i] = v->wide_shared && shared ? 2 * v->F : v->F;
    }
}

static const synth_variant *find_variant(const char *name) {
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++)
        if (!strcmp(VARIANTS[i].name, name)) return &VARIANTS[i];
    return NULL;
}

bool ilm_synth_variant_known(const char *name) { return find_variant(name) != NULL; }

// ---- tensor specs ----------------------------------------------------------------------

int synth_tlist_push(synth_tlist *l, const synth_tspec *t, ilm_err *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        synth_tspec *n = realloc(l->t, (size_t)cap * sizeof *n);
        if (!n) return ilm_fail(err, "out of memory");
        l->t = n;
        l->cap = cap;
    }
    l->t[l->n++] = *t;
    return 0;
}

static int add_t(synth_tlist *l, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2, int init, float a,
                 float b, ilm_err *err) {
    synth_tspec t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.n_dims = n_dims;
    t.ne[0] = ne0;
    t.ne[1] = n_dims > 1 ? ne1 : 1;
    t.ne[2] = n_dims > 2 ? ne2 : 1;
    t.ne[3] = 1;
    t.init = init;
    t.a = a;
    t.b = b;
    // the same type rule as `ironlm quantize` (default mix): LM head Q8_0 under Q4_0,
    // router and 1-D tensors F32
    t.type = init == INIT_ORDERING ? ILM_TYPE_I32
                                   : ilm_quant_tensor_type(name, n_dims, ILM_TYPE_F32, l->target, false, false);
    return synth_tlist_push(l, &t, err);
}

static float inv_sqrt(int64_t k) { return (float)(1.0 / sqrt((double)k)); }

#define MAT2(nm, k, n) add_t(l, nm, 2, k, n, 1, INIT_MATRIX, inv_sqrt(k), 0, err)
#define NORM1(nm, n, c, s) add_t(l, nm, 1, n, 1, 1, INIT_NORM, c, s, err)

static int blk_name(char *buf, size_t n, int i, const char *suffix) {
    return snprintf(buf, n, "blk.%d.%s", i, suffix) >= (int)n;
}

// Target tensors, in the converter's order (docs/gemma4.md §3.3; fixtures/ik README).
static int list_target(synth_tlist *l, const synth_model *p, ilm_err *err) {
    const synth_variant *v = p->v;
    const int H = v->H, P = v->ple, V = p->V;
    char nm[64];
    if (add_t(l, "rope_freqs.weight", 1, ROPE_FREQS, 1, 1, INIT_ROPE_FREQS, 0, 0, err)) return -1;
    if (add_t(l, "token_embd.weight", 2, H, V, 1, INIT_MATRIX, inv_sqrt(H), 0, err)) return -1;
    if (P) {
        if (add_t(l, "per_layer_token_embd.weight", 2, (int64_t)P * p->L, V, 1, INIT_MATRIX, inv_sqrt(P), 0, err) ||
            MAT2("per_layer_model_proj.weight", H, (int64_t)P * p->L) ||
            NORM1("per_layer_proj_norm.weight", P, 1.0f, 0.1f))
            return -1;
    }
    for (int i = 0; i < p->L; i++) {
        const bool sl = p->sliding[i], owns_kv = i < p->L - p->n_shared;
        const int hd = sl ? HD_SWA : HD_FULL, nkv = sl ? v->nkv_s : v->nkv_f, F = p->F[i];
#define B(s) (blk_name(nm, sizeof nm, i, s) ? ilm_fail(err, "name too long") : 0)
        if (B("attn_norm.weight") || NORM1(nm, H, 1.0f, 0.1f)) return -1;
        if (B("layer_output_scale.weight") || NORM1(nm, 1, 0.9f, 0.1f)) return -1;
        if (B("ffn_down.weight") || MAT2(nm, F, H)) return -1;
        if (B("ffn_gate.weight") || MAT2(nm, H, F)) return -1;
        if (B("ffn_up.weight") || MAT2(nm, H, F)) return -1;
        if (B("post_attention_norm.weight") || NORM1(nm, H, 0.5f, 0.05f)) return -1;
        if (B("post_ffw_norm.weight") || NORM1(nm, H, 0.5f, 0.05f)) return -1;
        if (v->n_expert) {
            if (B("post_ffw_norm_1.weight") || NORM1(nm, H, 0.5f, 0.05f)) return -1;
            if (B("post_ffw_norm_2.weight") || NORM1(nm, H, 0.5f, 0.05f)) return -1;
        }
        if (B("ffn_norm.weight") || NORM1(nm, H, 1.0f, 0.1f)) return -1;
        if (v->n_expert) {
            const int E = v->n_expert, Fe = v->F_expert;
            if (B("pre_ffw_norm_2.weight") || NORM1(nm, H, 1.0f, 0.1f)) return -1;
            if (B("ffn_gate_inp.weight") || MAT2(nm, H, E)) return -1;
            if (B("ffn_down_exps.scale") || NORM1(nm, E, 1.0f, 0.1f)) return -1;
            if (B("ffn_gate_inp.scale") || NORM1(nm, H, 1.0f, 0.1f)) return -1;
            if (B("ffn_down_exps.weight") || add_t(l, nm, 3, Fe, H, E, INIT_MATRIX, inv_sqrt(Fe), 0, err)) return -1;
            if (B("ffn_gate_up_exps.weight") || add_t(l, nm, 3, H, 2 * Fe, E, INIT_MATRIX, inv_sqrt(H), 0, err))
                return -1;
        }
        if (P) {
            if (B("inp_gate.weight") || MAT2(nm, H, P)) return -1;
            if (B("proj.weight") || MAT2(nm, P, H)) return -1;
            if (B("post_norm.weight") || NORM1(nm, H, 0.5f, 0.05f)) return -1;
        }
        if (owns_kv) {
            if (B("attn_k_norm.weight") || NORM1(nm, hd, 1.0f, 0.1f)) return -1;
            if (B("attn_k.weight") || MAT2(nm, H, (int64_t)nkv * hd)) return -1;
        }
        if (B("attn_output.weight") || MAT2(nm, (int64_t)v->nh * hd, H)) return -1;
        if (B("attn_q_norm.weight") || NORM1(nm, hd, 0.25f, 0.02f)) return -1;
        if (B("attn_q.weight") || MAT2(nm, H, (int64_t)v->nh * hd)) return -1;
        if (owns_kv && !(v->k_eq_v && !sl)) {
            if (B("attn_v.weight") || MAT2(nm, H, (int64_t)nkv * hd)) return -1;
        }
#undef B
    }
    return NORM1("output_norm.weight", H, 1.0f, 0.1f);
}

// Drafter tensors, arch gemma4_mtp (docs/gemma4.md §3.4): 4 layers S,S,S,F without K/V.
static int list_drafter(synth_tlist *l, const synth_model *p, ilm_err *err) {
    const synth_variant *v = p->v;
    const int Hd = v->Hd, Ht = v->H, Fd = v->Fd, V = p->V;
    char nm[64];
    if (add_t(l, "token_embd.weight", 2, Hd, V, 1, INIT_MATRIX, inv_sqrt(Hd), 0, err) ||
        NORM1("output_norm.weight", Hd, 1.0f, 0.1f) || MAT2("mtp_pre_proj.weight", 2 * Ht, Hd) ||
        MAT2("mtp_post_proj.weight", Hd, Ht))
        return -1;
    if (v->centroids) {
        if (MAT2("mtp_centroids.weight", Hd, N_CENTROIDS) ||
            add_t(l, "mtp_token_ordering.weight", 1, V, 1, 1, INIT_ORDERING, 0, 0, err))
            return -1;
    }
    for (int i = 0; i < 4; i++) {
        const int hd = i < 3 ? HD_SWA : HD_FULL;
#define B(s) (blk_name(nm, sizeof nm, i, s) ? ilm_fail(err, "name too long") : 0)
        if (B("attn_norm.weight") || NORM1(nm, Hd, 1.0f, 0.1f)) return -1;
        if (B("layer_output_scale.weight") || NORM1(nm, 1, 0.9f, 0.1f)) return -1;
        if (B("ffn_down.weight") || MAT2(nm, Fd, Hd)) return -1;
        if (B("ffn_gate.weight") || MAT2(nm, Hd, Fd)) return -1;
        if (B("ffn_up.weight") || MAT2(nm, Hd, Fd)) return -1;
        if (B("post_attention_norm.weight") || NORM1(nm, Hd, 0.5f, 0.05f)) return -1;
        if (B("post_ffw_norm.weight") || NORM1(nm, Hd, 0.5f, 0.05f)) return -1;
        if (B("ffn_norm.weight") || NORM1(nm, Hd, 1.0f, 0.1f)) return -1;
        if (B("attn_output.weight") || MAT2(nm, (int64_t)v->nh_d * hd, Hd)) return -1;
        if (B("attn_q_norm.weight") || NORM1(nm, hd, 0.25f, 0.02f)) return -1;
        if (B("attn_q.weight") || MAT2(nm, Hd, (int64_t)v->nh_d * hd)) return -1;
#undef B
    }
    return 0;
}

// ---- the plan ----------------------------------------------------------------------------

// Validates the options and lists the tensors.
int ilm_synth_plan_file(const ilm_synth_opts *o, synth_model *p, synth_tlist *l, ilm_err *err) {
    const synth_variant *v = o->variant ? find_variant(o->variant) : NULL;
    if (!v) return ilm_fail(err, "synth: unknown variant '%s' (e2b, e4b, 12b, 26b-a4b, 31b)", o->variant ? o->variant : "");
    if (o->type != ILM_TYPE_Q4_0 && o->type != ILM_TYPE_Q8_0 && o->type != ILM_TYPE_F16 && o->type != ILM_TYPE_BF16)
        return ilm_fail(err, "synth: type must be q4_0, q8_0, f16 or bf16");
    int V = o->vocab > 0 ? o->vocab : REAL_VOCAB;
    if (V < VOCAB_MIN || V > REAL_VOCAB || V % N_CENTROIDS != 0)
        return ilm_fail(err, "synth: vocabulary size %d must be a multiple of %d in [%d, %d]", V, (int)N_CENTROIDS,
                        (int)VOCAB_MIN, (int)REAL_VOCAB);
    if (o->layers < 0 || o->layers > MAX_LAYERS) return ilm_fail(err, "synth: --layers %d out of range", o->layers);
    plan_model(p, v, o->drafter ? 0 : o->layers, V);
    *l = (synth_tlist){.target = o->type};
    return o->drafter ? list_drafter(l, p, err) : list_target(l, p, err);
}

int ilm_synth_plan(const ilm_synth_opts *o, ilm_synth_tensor **tensors, int *n, ilm_err *err) {
    synth_model p;
    synth_tlist l = {0};
    *tensors = NULL;
    *n = 0;
    if (ilm_synth_plan_file(o, &p, &l, err)) {
        free(l.t);
        return -1;
    }
    ilm_synth_tensor *t = calloc((size_t)l.n + 1, sizeof *t);
    if (!t) {
        free(l.t);
        return ilm_fail(err, "out of memory");
    }
    for (int i = 0; i < l.n; i++) {
        snprintf(t[i].name, sizeof t[i].name, "%.63s", l.t[i].name);  // GGUF names here are < 64 bytes
        t[i].type = l.t[i].type;
        t[i].n_dims = l.t[i].n_dims;
        memcpy(t[i].ne, l.t[i].ne, sizeof t[i].ne);
    }
    free(l.t);
    *tensors = t;
    *n = l.n;
    return 0;
}
