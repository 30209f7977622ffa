// test_synth.c — src/tools/synth_*.c: real Gemma 4 shapes and metadata, checked against expectations
// typed in here from docs/gemma4.md §1.1–1.4, §3.2–3.4 (not from the generator's tables).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "simd/half.h"
#include "harness.h"
#include "simd/kernels.h"
#include "tools/quantize.h"
#include "tools/synth.h"

// ---- the spec, as tabulated in docs/gemma4.md ------------------------------------------

typedef struct {
    const char *name;
    int L, H, F, nh, nkv_s, nkv_f, window;
    int full_every;     // layer i is full iff (i + 1) % full_every == 0   (§1.1 pattern)
    int n_shared, P;    // §1.3, §1.1
    int q_s, q_f, kv_s, k_f, v_f;   // §1.4 output rows (v_f 0: K = V, no attn_v)
    int E, Fe;          // MoE
    int ctx;
    int Hd, Fd, nh_d;   // §1.2 drafter
    bool centroids;
} spec;

static const spec SPECS[] = {
    {"e2b", 35, 1536, 6144, 8, 1, 1, 512, 5, 20, 256, 2048, 4096, 256, 512, 512, 0, 0, 131072, 256, 2048, 4, true},
    {"e4b", 42, 2560, 10240, 8, 2, 2, 512, 6, 18, 256, 2048, 4096, 512, 1024, 1024, 0, 0, 131072, 256, 2048, 4, true},
    {"12b", 48, 3840, 15360, 16, 8, 1, 1024, 6, 0, 0, 4096, 8192, 2048, 512, 0, 0, 0, 262144, 1024, 8192, 16, false},
    {"26b-a4b", 30, 2816, 2112, 16, 8, 2, 1024, 6, 0, 0, 4096, 8192, 2048, 1024, 0, 128, 704, 262144, 1024, 8192, 16,
     false},
    {"31b", 60, 5376, 21504, 32, 16, 4, 1024, 6, 0, 0, 8192, 16384, 4096, 2048, 0, 0, 0, 262144, 1024, 8192, 32, false},
};

typedef struct {
    char name[64];
    int type, n_dims;
    int64_t ne[3];
} want_t;

typedef struct {
    want_t t[1200];
    int n;
} want_list;

static void want(want_list *w, int type, int64_t a, int64_t b, int64_t c, const char *fmt, int layer) {
    want_t *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->type = type;
    t->n_dims = c ? 3 : b ? 2 : 1;
    t->ne[0] = a;
    t->ne[1] = b ? b : 1;
    t->ne[2] = c ? c : 1;
}

// Expected tensors of a verifier with L layers of which n_shared trailing ones share KV (§3.3).
// `wt` = the weight type, `head` = token_embd's type.
static void want_target(want_list *w, const spec *s, int L, int n_shared, int V, int wt, int head) {
    const int F32 = ILM_TYPE_F32, H = s->H;
    w->n = 0;
    want(w, F32, 256, 0, 0, "rope_freqs.weight", 0);
    want(w, head, H, V, 0, "token_embd.weight", 0);
    want(w, F32, H, 0, 0, "output_norm.weight", 0);
    if (s->P) {
        want(w, wt, (int64_t)s->P * L, V, 0, "per_layer_token_embd.weight", 0);
        want(w, wt, H, (int64_t)s->P * L, 0, "per_layer_model_proj.weight", 0);
        want(w, F32, s->P, 0, 0, "per_layer_proj_norm.weight", 0);
    }
    for (int i = 0; i < L; i++) {
        bool full = (i + 1) % s->full_every == 0, shared = i >= L - n_shared;
        int hd = full ? 512 : 256;
        // E2B: layers 15..34 (the shared ones) are double-wide (§1.1)
        int F = !strcmp(s->name, "e2b") && shared ? 12288 : s->F;
        want(w, F32, H, 0, 0, "blk.%d.attn_norm.weight", i);
        want(w, wt, H, full ? s->q_f : s->q_s, 0, "blk.%d.attn_q.weight", i);
        want(w, F32, hd, 0, 0, "blk.%d.attn_q_norm.weight", i);
        if (!shared) {
            want(w, wt, H, full ? s->k_f : s->kv_s, 0, "blk.%d.attn_k.weight", i);
            want(w, F32, hd, 0, 0, "blk.%d.attn_k_norm.weight", i);
            if (!full || s->v_f) want(w, wt, H, full ? s->v_f : s->kv_s, 0, "blk.%d.attn_v.weight", i);
        }
        want(w, wt, full ? s->q_f : s->q_s, H, 0, "blk.%d.attn_output.weight", i);
        want(w, F32, H, 0, 0, "blk.%d.post_attention_norm.weight", i);
        want(w, F32, H, 0, 0, "blk.%d.ffn_norm.weight", i);
        want(w, wt, H, F, 0, "blk.%d.ffn_gate.weight", i);
        want(w, wt, H, F, 0, "blk.%d.ffn_up.weight", i);
        want(w, wt, F, H, 0, "blk.%d.ffn_down.weight", i);
        want(w, F32, H, 0, 0, "blk.%d.post_ffw_norm.weight", i);
        want(w, F32, 1, 0, 0, "blk.%d.layer_output_scale.weight", i);
        if (s->P) {
            want(w, wt, H, s->P, 0, "blk.%d.inp_gate.weight", i);
            want(w, wt, s->P, H, 0, "blk.%d.proj.weight", i);
            want(w, F32, H, 0, 0, "blk.%d.post_norm.weight", i);
        }
        if (s->E) {
            want(w, F32, H, s->E, 0, "blk.%d.ffn_gate_inp.weight", i);
            want(w, F32, H, 0, 0, "blk.%d.ffn_gate_inp.scale", i);
            want(w, F32, H, 0, 0, "blk.%d.pre_ffw_norm_2.weight", i);
            want(w, F32, H, 0, 0, "blk.%d.post_ffw_norm_1.weight", i);
            want(w, F32, H, 0, 0, "blk.%d.post_ffw_norm_2.weight", i);
            want(w, wt, H, 2 * s->Fe, s->E, "blk.%d.ffn_gate_up_exps.weight", i);
            want(w, wt, s->Fe, H, s->E, "blk.%d.ffn_down_exps.weight", i);
            want(w, F32, s->E, 0, 0, "blk.%d.ffn_down_exps.scale", i);
        }
    }
}

// Expected drafter tensors (§3.4): 4 layers S,S,S,F, no K/V.
static void want_drafter(want_list *w, const spec *s, int V, int wt, int head) {
    const int F32 = ILM_TYPE_F32, Hd = s->Hd;
    w->n = 0;
    want(w, head, Hd, V, 0, "token_embd.weight", 0);
    want(w, F32, Hd, 0, 0, "output_norm.weight", 0);
    want(w, wt, 2 * s->H, Hd, 0, "mtp_pre_proj.weight", 0);
    want(w, wt, Hd, s->H, 0, "mtp_post_proj.weight", 0);
    if (s->centroids) {
        want(w, wt, Hd, 2048, 0, "mtp_centroids.weight", 0);
        want(w, ILM_TYPE_I32, V, 0, 0, "mtp_token_ordering.weight", 0);
    }
    for (int i = 0; i < 4; i++) {
        int hd = i == 3 ? 512 : 256;
        want(w, F32, Hd, 0, 0, "blk.%d.attn_norm.weight", i);
        want(w, wt, Hd, (int64_t)s->nh_d * hd, 0, "blk.%d.attn_q.weight", i);
        want(w, F32, hd, 0, 0, "blk.%d.attn_q_norm.weight", i);
        want(w, wt, (int64_t)s->nh_d * hd, Hd, 0, "blk.%d.attn_output.weight", i);
        want(w, F32, Hd, 0, 0, "blk.%d.post_attention_norm.weight", i);
        want(w, F32, Hd, 0, 0, "blk.%d.ffn_norm.weight", i);
        want(w, wt, Hd, s->Fd, 0, "blk.%d.ffn_gate.weight", i);
        want(w, wt, Hd, s->Fd, 0, "blk.%d.ffn_up.weight", i);
        want(w, wt, s->Fd, Hd, 0, "blk.%d.ffn_down.weight", i);
        want(w, F32, Hd, 0, 0, "blk.%d.post_ffw_norm.weight", i);
        want(w, F32, 1, 0, 0, "blk.%d.layer_output_scale.weight", i);
    }
}

// Every expected tensor present with its shape and type, and nothing else.
static void check_table(const char *what, const want_list *w, int n, const char *(*name_of)(const void *, int),
                        void (*info_of)(const void *, int, int *, int *, int64_t *), const void *src) {
    CHECK_MSG(n == w->n, "%s: %d tensors, spec %d", what, n, w->n);
    for (int k = 0; k < w->n; k++) {
        const want_t *e = &w->t[k];
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (!strcmp(name_of(src, i), e->name)) found = i;
        CHECK_MSG(found >= 0, "%s: %s missing", what, e->name);
        if (found < 0) continue;
        int type, nd;
        int64_t ne[4];
        info_of(src, found, &type, &nd, ne);
        CHECK_MSG(type == e->type, "%s: %s is %s, want %s", what, e->name, ilm_ggml_type_name(type),
                  ilm_ggml_type_name(e->type));
        CHECK_MSG(nd == e->n_dims && ne[0] == e->ne[0] && ne[1] == e->ne[1] && ne[2] == e->ne[2],
                  "%s: %s is {%lld, %lld, %lld} (%d dims), want {%lld, %lld, %lld}", what, e->name, (long long)ne[0],
                  (long long)ne[1], (long long)ne[2], nd, (long long)e->ne[0], (long long)e->ne[1], (long long)e->ne[2]);
    }
}

static const char *plan_name(const void *src, int i) { return ((const ilm_synth_tensor *)src)[i].name; }
static void plan_info(const void *src, int i, int *type, int *nd, int64_t *ne) {
    const ilm_synth_tensor *t = &((const ilm_synth_tensor *)src)[i];
    *type = t->type;
    *nd = t->n_dims;
    memcpy(ne, t->ne, sizeof t->ne);
}
static const char *file_name(const void *src, int i) { return ((const ilm_gguf *)src)->tensors[i].name; }
static void file_info(const void *src, int i, int *type, int *nd, int64_t *ne) {
    const ilm_gguf_tensor *t = &((const ilm_gguf *)src)->tensors[i];
    *type = t->type;
    *nd = t->n_dims;
    memcpy(ne, t->ne, sizeof t->ne);
}

// ---- full-size plans: every variant, every layer, the real vocabulary --------------------

TEST(synth_plan_matches_spec_all_variants) {
    static want_list w;
    for (size_t k = 0; k < sizeof SPECS / sizeof SPECS[0]; k++) {
        const spec *s = &SPECS[k];
        for (int drafter = 0; drafter < 2; drafter++) {
            ilm_synth_opts o = {.variant = s->name, .type = ILM_TYPE_Q4_0, .drafter = drafter};
            ilm_synth_tensor *t = NULL;
            int n = 0;
            ilm_err err;
            CHECK_MSG(ilm_synth_plan(&o, &t, &n, &err) == 0, "%s", err.msg);
            if (drafter) want_drafter(&w, s, 262144, ILM_TYPE_Q4_0, ILM_TYPE_Q8_0);
            else want_target(&w, s, s->L, s->n_shared, 262144, ILM_TYPE_Q4_0, ILM_TYPE_Q8_0);
            char what[64];
            snprintf(what, sizeof what, "%s%s", s->name, drafter ? " drafter" : "");
            check_table(what, &w, n, plan_name, plan_info, t);
            free(t);
        }
    }
}

// ---- written files ------------------------------------------------------------------------

static uint32_t u32_of(const ilm_gguf *g, const char *key) {
    uint32_t v = 0xdeadbeef;
    ilm_err err;
    CHECK_MSG(ilm_gguf_get_u32(g, key, &v, &err) == 0, "%s", err.msg);
    return v;
}

static const ilm_gguf_value *arr_of(const ilm_gguf *g, const char *key, uint64_t count) {
    const ilm_gguf_kv *kv = ilm_gguf_find_kv(g, key);
    CHECK_MSG(kv && kv->val.type == GGUF_ARRAY && kv->val.arr.count == count, "%s: missing or not an array of %llu",
              key, (unsigned long long)count);
    return kv && kv->val.type == GGUF_ARRAY && kv->val.arr.count == count ? &kv->val : NULL;
}

static bool token_is(const ilm_gguf *g, int id, const char *text, int type) {
    const ilm_gguf_kv *tok = ilm_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const ilm_gguf_kv *typ = ilm_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (!tok || !typ || (uint64_t)id >= tok->val.arr.count) return false;
    const ilm_gguf_str *s = &tok->val.arr.strs[id];
    return s->len == strlen(text) && !memcmp(s->ptr, text, s->len) && ilm_gguf_arr_int(&typ->val, (uint64_t)id) == type;
}

// Metadata of §3.2 / §3.4 / §3.6 for a file of L layers (or a drafter).
static void check_metadata(const ilm_gguf *g, const spec *s, int L, int n_shared, int V, bool drafter, int ftype) {
    char *arch = NULL;
    ilm_err err;
    CHECK(ilm_gguf_get_str(g, "general.architecture", &arch, &err) == 0);
    CHECK_STR(arch, drafter ? "gemma4_mtp" : "gemma4");
    char key[128];
#define K(x) (snprintf(key, sizeof key, "%s.%s", arch ? arch : "?", x), key)
    int nL = drafter ? 4 : L;
    CHECK_EQ(u32_of(g, K("block_count")), nL);
    CHECK_EQ(u32_of(g, K("embedding_length")), drafter ? s->Hd : s->H);
    CHECK_EQ(u32_of(g, K("attention.head_count")), drafter ? s->nh_d : s->nh);
    CHECK_EQ(u32_of(g, K("attention.key_length")), 512);
    CHECK_EQ(u32_of(g, K("attention.value_length")), 512);
    CHECK_EQ(u32_of(g, K("attention.key_length_swa")), 256);
    CHECK_EQ(u32_of(g, K("attention.value_length_swa")), 256);
    CHECK_EQ(u32_of(g, K("attention.sliding_window")), s->window);
    CHECK_EQ(u32_of(g, K("rope.dimension_count")), 512);
    CHECK_EQ(u32_of(g, K("rope.dimension_count_swa")), 256);
    CHECK_EQ(u32_of(g, K("context_length")), s->ctx);
    CHECK_EQ(u32_of(g, "general.file_type"), ftype);
    float f = 0;
    CHECK(ilm_gguf_get_f32(g, K("rope.freq_base"), &f, &err) == 0 && f == 1e6f);
    CHECK(ilm_gguf_get_f32(g, K("rope.freq_base_swa"), &f, &err) == 0 && f == 1e4f);
    CHECK(ilm_gguf_get_f32(g, K("attention.layer_norm_rms_epsilon"), &f, &err) == 0 && f == 1e-6f);
    const ilm_gguf_value *pat = arr_of(g, K("attention.sliding_window_pattern"), (uint64_t)nL);
    CHECK(pat && pat->arr.elem_type == GGUF_BOOL);
    int32_t nkv[64];
    CHECK(ilm_gguf_get_u32_per_layer(g, K("attention.head_count_kv"), nL, nkv, &err) == 0);
    for (int i = 0; pat && i < nL; i++) {
        bool full = drafter ? i == 3 : (i + 1) % s->full_every == 0;
        CHECK_EQ(ilm_gguf_arr_int(pat, (uint64_t)i), !full);
        CHECK_EQ(nkv[i], full ? s->nkv_f : s->nkv_s);
    }
    if (drafter) {
        CHECK_EQ(u32_of(g, K("backbone_embedding_length")), s->H);
        CHECK_EQ(u32_of(g, K("feed_forward_length")), s->Fd);
        CHECK_EQ(u32_of(g, K("centroid_count")), s->centroids ? 2048 : 0);
        bool ordered = !s->centroids;
        CHECK(ilm_gguf_get_bool(g, K("use_ordered_embeddings"), &ordered, &err) == 0 && ordered == s->centroids);
    } else {
        CHECK_EQ(u32_of(g, K("attention.shared_kv_layers")), n_shared);
        CHECK_EQ(u32_of(g, K("embedding_length_per_layer_input")), s->P);
        int32_t ff[64];
        CHECK(ilm_gguf_get_u32_per_layer(g, K("feed_forward_length"), L, ff, &err) == 0);
        for (int i = 0; i < L; i++)
            CHECK_EQ(ff[i], !strcmp(s->name, "e2b") && i >= L - n_shared ? 12288 : s->F);
        if (!strcmp(s->name, "e2b")) CHECK(arr_of(g, K("feed_forward_length"), (uint64_t)L) != NULL);
        if (s->E) {
            CHECK_EQ(u32_of(g, K("expert_count")), 128);
            CHECK_EQ(u32_of(g, K("expert_used_count")), 8);
            CHECK_EQ(u32_of(g, K("expert_feed_forward_length")), 704);
        }
    }
#undef K
    // tokenizer: real size, real special tokens, byte tokens
    CHECK(arr_of(g, "tokenizer.ggml.tokens", (uint64_t)V) != NULL);
    CHECK(arr_of(g, "tokenizer.ggml.token_type", (uint64_t)V) != NULL);
    char *model = NULL;
    CHECK(ilm_gguf_get_str(g, "tokenizer.ggml.model", &model, &err) == 0);
    CHECK_STR(model, "gemma4");
    free(model);
    CHECK(token_is(g, 0, "<pad>", 3) && token_is(g, 1, "<eos>", 3) && token_is(g, 2, "<bos>", 3));
    CHECK(token_is(g, 105, "<|turn>", 3) && token_is(g, 106, "<turn|>", 3));
    CHECK(token_is(g, 50, "<|tool_response>", 4) && token_is(g, 107, "\n", 1));
    int bytes = 0;
    const ilm_gguf_kv *typ = ilm_gguf_find_kv(g, "tokenizer.ggml.token_type");
    for (int i = 0; typ && i < V; i++) bytes += ilm_gguf_arr_int(&typ->val, (uint64_t)i) == 6;
    CHECK_EQ(bytes, 256);
    bool found_41 = false;
    for (int i = 0; i < 1024 && !found_41; i++) found_41 = token_is(g, i, "<0x41>", 6);
    CHECK(found_41);
    CHECK_EQ(u32_of(g, "tokenizer.ggml.bos_token_id"), 2);
    CHECK_EQ(u32_of(g, "tokenizer.ggml.eos_token_id"), 1);
    // the description flags inferred values; no scalar string carries a path or host name
    char *desc = NULL;
    CHECK(ilm_gguf_get_str(g, "general.description", &desc, &err) == 0);
    CHECK(desc && strstr(desc, "[I]"));
    free(desc);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const ilm_gguf_kv *kv = &g->kv[i];
        if (kv->val.type != GGUF_STRING) continue;
        CHECK_MSG(!memchr(kv->val.str.ptr, '/', kv->val.str.len), "%s holds a '/'", kv->key);
        if (strlen(host) >= 4) CHECK(!memmem(kv->val.str.ptr, kv->val.str.len, host, strlen(host)));
    }
    free(arch);
}

// Writes a synth file through the binary.
static int synth_cmd(const ilm_synth_opts *o) {
    static const char *const types[] = {[ILM_TYPE_Q4_0] = "q4_0", [ILM_TYPE_Q8_0] = "q8_0", [ILM_TYPE_F16] = "f16",
                                        [ILM_TYPE_BF16] = "bf16"};
    char cmd[2048], layers[32] = "", *out = NULL;
    if (o->layers) snprintf(layers, sizeof layers, "--layers %d", o->layers);
    snprintf(cmd, sizeof cmd, "%s synth --variant %s --type %s -o '%s' --seed %llu --vocab %d %s %s -t 2 2>&1",
             t_bin(), o->variant, types[o->type], o->out, (unsigned long long)o->seed, o->vocab,
             o->drafter ? "--drafter" : "", layers);
    int rc = t_run(cmd, &out);
    if (rc) printf("  synth: %s\n", out ? out : "");
    free(out);
    return rc;
}

static void synth_and_check(const char *variant, int type, int layers, int n_shared, bool drafter, int vocab,
                            void (*more)(const ilm_gguf *)) {
    const spec *s = NULL;
    for (size_t k = 0; k < sizeof SPECS / sizeof SPECS[0]; k++)
        if (!strcmp(SPECS[k].name, variant)) s = &SPECS[k];
    char name[96];
    snprintf(name, sizeof name, "synth-%s-%d-%d.gguf", variant, layers, (int)drafter);
    ilm_synth_opts o = {.variant = variant, .type = type, .out = t_tmp(name), .seed = 7, .layers = layers,
                        .drafter = drafter, .vocab = vocab, .n_threads = 2};
    CHECK_EQ(synth_cmd(&o), 0);
    ilm_gguf *g = NULL;
    ilm_err err;
    CHECK_MSG(ilm_gguf_open(&g, o.out, &err) == 0, "%s", err.msg);
    if (g && s) {
        static want_list w;
        int head = type == ILM_TYPE_Q4_0 ? ILM_TYPE_Q8_0 : type;
        if (drafter) want_drafter(&w, s, vocab, type, head);
        else want_target(&w, s, layers, n_shared, vocab, type, head);
        check_table(name, &w, (int)g->n_tensors, file_name, file_info, g);
        check_metadata(g, s, layers, n_shared, vocab, drafter, ilm_ftype_of(type));
        // rope_freqs: 64 rotated pairs (1.0), identity after (1e30) — §2.6
        const ilm_gguf_tensor *rf = ilm_gguf_find_tensor(g, "rope_freqs.weight");
        if (rf) {
            const float *x = rf->data;
            for (int i = 0; i < 256; i++) CHECK(x[i] == (i < 64 ? 1.0f : 1e30f));
        }
        CHECK(drafter || rf);
        if (more) more(g);
    }
    ilm_gguf_close(g);
    unlink(o.out);
}

TEST(synth_e2b_two_layers_f16) { synth_and_check("e2b", ILM_TYPE_F16, 2, 0, false, 2048, NULL); }
TEST(synth_e4b_one_layer_q8_0) { synth_and_check("e4b", ILM_TYPE_Q8_0, 1, 0, false, 2048, NULL); }
TEST(synth_12b_one_layer_q4_0) { synth_and_check("12b", ILM_TYPE_Q4_0, 1, 0, false, 2048, NULL); }
TEST(synth_26b_a4b_one_layer_q4_0) { synth_and_check("26b-a4b", ILM_TYPE_Q4_0, 1, 0, false, 2048, NULL); }
TEST(synth_31b_one_layer_q4_0) { synth_and_check("31b", ILM_TYPE_Q4_0, 1, 0, false, 2048, NULL); }
TEST(synth_drafters) {
    synth_and_check("e4b", ILM_TYPE_BF16, 0, 0, true, 4096, NULL);
    synth_and_check("12b", ILM_TYPE_Q4_0, 0, 0, true, 2048, NULL);
    synth_and_check("26b-a4b", ILM_TYPE_Q4_0, 0, 0, true, 2048, NULL);
    synth_and_check("31b", ILM_TYPE_Q8_0, 0, 0, true, 2048, NULL);
}

// E2B's drafter at the real vocabulary: 262144 token strings, the multimodal markers at
// their ids, and the centroid head's token ordering (§3.4: token -> centroid, 128 each).
static void check_full_vocab_drafter(const ilm_gguf *g) {
    CHECK(token_is(g, 258882, "<image|>", 3));
    CHECK(token_is(g, 255999, "<|image>", 3));
    const ilm_gguf_tensor *ord = ilm_gguf_find_tensor(g, "mtp_token_ordering.weight");
    CHECK(ord && ord->type == ILM_TYPE_I32 && ord->ne[0] == 262144);
    if (ord) {
        static int count[2048];
        memset(count, 0, sizeof count);
        const int32_t *c = ord->data;
        bool in_range = true, even = true;
        for (int i = 0; i < 262144; i++) {
            if (c[i] < 0 || c[i] >= 2048) in_range = false;
            else count[c[i]]++;
        }
        for (int b = 0; b < 2048; b++) even = even && count[b] == 128;
        CHECK(in_range);
        CHECK(even);
    }
    CHECK_EQ(u32_of(g, "gemma4_mtp.centroid_top_k"), 32);
}

TEST(synth_e2b_drafter_full_vocab) { synth_and_check("e2b", ILM_TYPE_Q4_0, 0, 0, true, 262144, check_full_vocab_drafter); }

// E2B at 7 layers: layers 0-4 own K/V (S,S,S,S,F), the rest share it (round(7*20/35) = 4,
// capped so both layer types keep an owner: 2 shared) with the double-wide MLP — checked on
// the plan, since the file would be large.
TEST(synth_e2b_truncated_sharing_rule) {
    static want_list w;
    ilm_synth_opts o = {.variant = "e2b", .type = ILM_TYPE_Q8_0, .layers = 7, .vocab = 2048};
    ilm_synth_tensor *t = NULL;
    int n = 0;
    ilm_err err;
    CHECK(ilm_synth_plan(&o, &t, &n, &err) == 0);
    want_target(&w, &SPECS[0], 7, 2, 2048, ILM_TYPE_Q8_0, ILM_TYPE_Q8_0);
    check_table("e2b/7", &w, n, plan_name, plan_info, t);
    free(t);
}

// ---- weights: what the quantizer would make; determinism --------------------------------

TEST(synth_blocks_are_quantizer_fixed_points) {
    for (int q = 0; q < 2; q++) {
        int type = q ? ILM_TYPE_Q8_0 : ILM_TYPE_Q4_0;
        ilm_synth_opts o = {.variant = "e2b", .type = type, .out = t_tmp(q ? "fp8.gguf" : "fp4.gguf"), .seed = 11,
                            .drafter = true, .vocab = 2048, .n_threads = 2};
        ilm_err err;
        CHECK_MSG(ilm_synth_file(&o, NULL, &err) == 0, "%s", err.msg);
        ilm_gguf *g = NULL;
        CHECK(ilm_gguf_open(&g, o.out, &err) == 0);
        for (int64_t i = 0; g && i < g->n_tensors; i++) {
            const ilm_gguf_tensor *t = &g->tensors[i];
            if (t->type != ILM_TYPE_Q4_0 && t->type != ILM_TYPE_Q8_0) continue;
            int64_t nb = (int64_t)(t->bytes / (t->type == ILM_TYPE_Q4_0 ? 18 : 34)), bad = 0;
            double sum2 = 0;
            for (int64_t b = 0; b < nb; b++) {
                float x[32];
                if (t->type == ILM_TYPE_Q4_0) {
                    const ilm_block_q4_0 *blk = (const ilm_block_q4_0 *)t->data + b;
                    float d = ilm_f16_to_f32(blk->d);
                    for (int j = 0; j < 16; j++) {
                        x[j] = (float)((blk->qs[j] & 15) - 8) * d;
                        x[j + 16] = (float)((blk->qs[j] >> 4) - 8) * d;
                    }
                    ilm_block_q4_0 again;
                    ilm_quantize_row_q4_0(x, &again, 32);
                    bad += memcmp(&again, blk, sizeof again) != 0;
                } else {
                    const ilm_block_q8_0 *blk = (const ilm_block_q8_0 *)t->data + b;
                    float d = ilm_f16_to_f32(blk->d);
                    for (int j = 0; j < 32; j++) x[j] = (float)blk->qs[j] * d;
                    ilm_block_q8_0 again;
                    ilm_quantize_row_q8_0(x, &again, 32);
                    bad += memcmp(&again, blk, sizeof again) != 0;
                }
                for (int j = 0; j < 32; j++) sum2 += (double)x[j] * x[j];
            }
            CHECK_MSG(bad == 0, "%s: %lld of %lld blocks change when requantized", t->name, (long long)bad,
                      (long long)nb);
            // std ~ 1/sqrt(K) (within a factor 2): projections keep their input's scale
            double std = sqrt(sum2 / ((double)nb * 32)), k = 1.0 / sqrt((double)t->ne[0]);
            CHECK_MSG(std > 0.5 * k && std < 2 * k, "%s: std %g, 1/sqrt(K) %g", t->name, std, k);
        }
        ilm_gguf_close(g);
        unlink(o.out);
    }
}

TEST(synth_deterministic_across_threads) {
    ilm_synth_opts a = {.variant = "e4b", .type = ILM_TYPE_Q4_0, .out = t_tmp("det-a.gguf"), .seed = 5,
                        .drafter = true, .vocab = 2048, .n_threads = 1};
    ilm_synth_opts b = a, c = a;
    b.out = t_tmp("det-b.gguf");
    b.n_threads = 3;
    c.out = t_tmp("det-c.gguf");
    c.seed = 6;
    ilm_err err;
    CHECK(ilm_synth_file(&a, NULL, &err) == 0);
    CHECK(ilm_synth_file(&b, NULL, &err) == 0);
    CHECK(ilm_synth_file(&c, NULL, &err) == 0);
    size_t na = 0, nb = 0, nc = 0;
    char *da = t_read(a.out, &na), *db = t_read(b.out, &nb), *dc = t_read(c.out, &nc);
    CHECK(da && db && na == nb && !memcmp(da, db, na));
    CHECK(dc && nc == na && memcmp(da, dc, na) != 0);  // another seed, other weights
    free(da);
    free(db);
    free(dc);
    unlink(a.out);
    unlink(b.out);
    unlink(c.out);
}

// ---- refusals ----------------------------------------------------------------------------

TEST(synth_refuses_without_disk_room) {
    ilm_err err;
    CHECK(ilm_synth_check_space(1000, 1ull << 40, "x.gguf", &err) == 0);
    CHECK(ilm_synth_check_space(7ull << 30, 6ull << 30, "x.gguf", &err) != 0);
    CHECK(strstr(err.msg, "not enough disk space") && strstr(err.msg, "x.gguf"));
    CHECK(ilm_synth_check_space(1ull << 30, (1ull << 30) + 1000, "x.gguf", &err) != 0);  // no margin left
    // the whole command path: pretend 1 MiB is free; nothing may be left behind
    ilm_synth_opts o = {.variant = "e2b", .type = ILM_TYPE_Q4_0, .out = t_tmp("nospace.gguf"), .drafter = true,
                        .vocab = 2048, .free_bytes = 1 << 20};
    CHECK(ilm_synth_file(&o, NULL, &err) != 0);
    CHECK_MSG(strstr(err.msg, "not enough disk space"), "%s", err.msg);
    CHECK(access(o.out, F_OK) != 0);
}

TEST(synth_rejects_bad_options) {
    ilm_err err;
    ilm_synth_opts o = {.variant = "e3b", .type = ILM_TYPE_Q4_0, .out = t_tmp("bad.gguf")};
    CHECK(ilm_synth_file(&o, NULL, &err) != 0 && strstr(err.msg, "e3b"));
    o.variant = "12b";
    o.type = ILM_TYPE_F32;
    CHECK(ilm_synth_file(&o, NULL, &err) != 0);
    o.type = ILM_TYPE_Q8_0;
    o.vocab = 1000;
    CHECK(ilm_synth_file(&o, NULL, &err) != 0 && strstr(err.msg, "vocabulary"));
    CHECK(access(o.out, F_OK) != 0);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s synth --variant 12b --type q5_k -o x.gguf 2>&1", t_bin());
    CHECK(t_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "ironlm: error:"), "%s", out ? out : "");
    free(out);
}
