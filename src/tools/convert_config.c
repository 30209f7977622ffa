// convert_config.c — config.json → Gemma 4 hyper-parameters → GGUF keys (docs/gemma4.md §3.2,
// §3.4, §3.5), in the order the reference converter writes them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/convert_impl.h"

typedef struct {
    const char *file;
    ilm_err *err;
} ctx;

// An integer field: absent or null → def (or an error when required, def < 0).
static int get_int(ctx *x, const ilm_json *o, const char *key, long def, long lo, long hi, int *out) {
    const ilm_json *v = ilm_json_get(o, key);
    if (!v || v->type == JSON_NULL) {
        if (def < 0) return ilm_fail(x->err, "%s: missing field %s", x->file, key);
        *out = (int)def;
        return 0;
    }
    if (v->type != JSON_NUM || v->num != floor(v->num) || v->num < (double)lo || v->num > (double)hi)
        return ilm_fail(x->err, "%s: field %s: expected an integer in %ld..%ld", x->file, key, lo, hi);
    *out = (int)v->num;
    return 0;
}

static int get_float(ctx *x, const ilm_json *o, const char *key, double def, float *out) {
    const ilm_json *v = ilm_json_get(o, key);
    if (!v || v->type == JSON_NULL) {
        *out = (float)def;
        return 0;
    }
    if (v->type != JSON_NUM || !isfinite(v->num)) return ilm_fail(x->err, "%s: field %s: expected a number", x->file, key);
    *out = (float)v->num;
    return 0;
}

static bool get_bool(const ilm_json *o, const char *key, bool def) {
    const ilm_json *v = ilm_json_get(o, key);
    return v && v->type == JSON_BOOL ? v->num != 0 : def;
}

static const char *get_str(const ilm_json *o, const char *key) {
    const ilm_json *v = ilm_json_get(o, key);
    return v && v->type == JSON_STR ? v->str : NULL;
}

// compressed-tensors pack-quantized, symmetric int4, group 32 (docs/gemma4.md §5.6); anything
// else is refused by name.
static int check_quant(ctx *x, const ilm_json *q, cv_config *c) {
    const char *m = get_str(q, "quant_method");
    if (!m || strcmp(m, "compressed-tensors"))
        return ilm_fail(x->err, "%s: quantization_config.quant_method '%s' is not supported (only compressed-tensors W4A16)",
                        x->file, m ? m : "?");
    const char *f = get_str(q, "format");
    if (!f || strcmp(f, "pack-quantized"))
        return ilm_fail(x->err, "%s: quantization_config.format '%s' is not supported (only pack-quantized)", x->file,
                        f ? f : "?");
    const ilm_json *groups = ilm_json_get(q, "config_groups");
    if (!groups || groups->type != JSON_OBJ || !groups->len)
        return ilm_fail(x->err, "%s: quantization_config.config_groups missing", x->file);
    for (size_t i = 0; i < groups->len; i++) {
        const ilm_json *g = &groups->items[i], *w = ilm_json_get(g, "weights"), *ia = ilm_json_get(g, "input_activations");
        const char *type = get_str(w, "type"), *strat = get_str(w, "strategy");
        const ilm_json *nb = ilm_json_get(w, "num_bits"), *gs = ilm_json_get(w, "group_size");
        if (!w || !nb || nb->type != JSON_NUM || nb->num != 4 || !type || strcmp(type, "int") ||
            !get_bool(w, "symmetric", false) || !strat || strcmp(strat, "group") || !gs || gs->type != JSON_NUM ||
            gs->num != 32 || get_bool(w, "dynamic", false) || (ia && ia->type != JSON_NULL))
            return ilm_fail(x->err, "%s: quantization_config.config_groups.%s: only symmetric int4 weights in groups of 32 "
                            "with 16-bit activations (W4A16) are supported", x->file, groups->keys[i]);
    }
    c->w4a16 = true;
    return 0;
}

static int layer_types(ctx *x, const ilm_json *tc, cv_config *c) {
    const ilm_json *lt = ilm_json_get(tc, "layer_types");
    if (!lt || lt->type != JSON_ARR || lt->len != (size_t)c->L)
        return ilm_fail(x->err, "%s: layer_types: expected %d entries", x->file, c->L);
    for (int i = 0; i < c->L; i++) {
        const ilm_json *t = &lt->items[i];
        if (t->type == JSON_STR && !strcmp(t->str, "sliding_attention")) c->sliding[i] = true;
        else if (t->type == JSON_STR && !strcmp(t->str, "full_attention")) c->sliding[i] = false;
        else return ilm_fail(x->err, "%s: layer_types[%d]: unknown layer type", x->file, i);
    }
    return 0;
}

// Head dims and KV heads per layer: sliding layers head_dim / num_key_value_heads, full layers
// global_head_dim / num_global_key_value_heads, then per_layer_config overrides.
static int heads(ctx *x, const ilm_json *tc, cv_config *c) {
    int hd, ghd, nkv, gnkv;
    if (get_int(x, tc, "head_dim", -1, 1, 65536, &hd) || get_int(x, tc, "global_head_dim", hd, 1, 65536, &ghd) ||
        get_int(x, tc, "num_key_value_heads", -1, 1, 65536, &nkv) ||
        get_int(x, tc, "num_global_key_value_heads", nkv, 1, 65536, &gnkv))
        return -1;
    c->hd_swa = c->hd_full = 0;
    const ilm_json *plc = ilm_json_get(tc, "per_layer_config");
    for (int i = 0; i < c->L; i++) {
        int d = c->sliding[i] ? hd : ghd, k = c->sliding[i] ? nkv : gnkv;
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        const ilm_json *p = plc && plc->type == JSON_OBJ ? ilm_json_get(plc, key) : NULL;
        if (p && (get_int(x, p, "head_dim", d, 1, 65536, &d) || get_int(x, p, "num_key_value_heads", k, 1, 65536, &k)))
            return -1;
        int *slot = c->sliding[i] ? &c->hd_swa : &c->hd_full;
        if (*slot && *slot != d)
            return ilm_fail(x->err, "%s: layer %d: head_dim %d differs from other layers of its type (%d)", x->file, i, d,
                            *slot);
        *slot = d;
        c->kv_heads[i] = k;
    }
    if (!c->hd_swa) c->hd_swa = hd;
    if (!c->hd_full) c->hd_full = ghd;
    return 0;
}

static int ffn(ctx *x, const ilm_json *tc, cv_config *c) {
    const ilm_json *is = ilm_json_get(tc, "intermediate_size");
    bool dw = get_bool(tc, "use_double_wide_mlp", false);
    for (int i = 0; i < c->L; i++) {
        const ilm_json *v = is && is->type == JSON_ARR ? ilm_json_at(is, (size_t)i) : is;
        if (!v || v->type != JSON_NUM || v->num != floor(v->num) || v->num < 1 || v->num > 1e7)
            return ilm_fail(x->err, "%s: intermediate_size: expected a positive integer or one per layer", x->file);
        c->ffn[i] = (int32_t)v->num;
        if (dw && i >= c->L - c->shared_kv) c->ffn[i] *= 2;  // double-wide MLP on KV-shared layers
    }
    return 0;
}

static int rope(ctx *x, const ilm_json *tc, cv_config *c) {
    const ilm_json *rp = ilm_json_get(tc, "rope_parameters");
    const ilm_json *full = rp ? ilm_json_get(rp, "full_attention") : NULL, *swa = rp ? ilm_json_get(rp, "sliding_attention") : NULL;
    float theta, local;
    if (get_float(x, tc, "rope_theta", 1e6, &theta) || get_float(x, tc, "rope_local_base_freq", 1e4, &local)) return -1;
    if (get_float(x, full, "rope_theta", theta, &c->rope_full) || get_float(x, swa, "rope_theta", local, &c->rope_swa) ||
        get_float(x, full, "partial_rotary_factor", 1.0, &c->partial_full))
        return -1;
    float swa_partial;
    if (get_float(x, swa, "partial_rotary_factor", 1.0, &swa_partial)) return -1;
    if (swa_partial != 1.0f || !(c->partial_full > 0 && c->partial_full <= 1))
        return ilm_fail(x->err, "%s: rope_parameters: partial rotation %g / %g is not supported", x->file,
                        (double)c->partial_full, (double)swa_partial);
    return 0;
}

static int parse(ctx *x, const ilm_json *j, cv_config *c) {
    memset(c, 0, sizeof *c);
    if (j->type != JSON_OBJ) return ilm_fail(x->err, "%s: not a JSON object", x->file);
    const ilm_json *archs = ilm_json_get(j, "architectures");
    const char *arch = archs && archs->type == JSON_ARR && archs->len ? (archs->items[0].type == JSON_STR ? archs->items[0].str : "?") : NULL;
    if (!arch) return ilm_fail(x->err, "%s: missing field architectures", x->file);
    if (!strcmp(arch, "Gemma4ForConditionalGeneration")) c->multimodal = true;
    else if (!strcmp(arch, "Gemma4AssistantForCausalLM")) c->kind = CV_DRAFTER;
    else if (strcmp(arch, "Gemma4ForCausalLM"))
        return ilm_fail(x->err, "%s: architecture '%.64s' is not supported (Gemma4ForConditionalGeneration, "
                        "Gemma4ForCausalLM, Gemma4AssistantForCausalLM)", x->file, arch);
    const ilm_json *q = ilm_json_get(j, "quantization_config");
    if (q && q->type != JSON_NULL && check_quant(x, q, c)) return -1;
    const ilm_json *tc = ilm_json_get(j, "text_config");
    if (!tc || tc->type != JSON_OBJ) tc = j;
    if (get_int(x, tc, "num_hidden_layers", -1, 1, CV_MAX_LAYERS, &c->L) ||
        get_int(x, tc, "hidden_size", -1, 1, 1 << 20, &c->H) || get_int(x, tc, "vocab_size", -1, 1, 1 << 24, &c->V) ||
        get_int(x, tc, "num_attention_heads", -1, 1, 65536, &c->nh) ||
        get_int(x, tc, "max_position_embeddings", -1, 1, 1 << 30, &c->ctx) ||
        get_int(x, tc, "sliding_window", -1, 1, 1 << 30, &c->window) ||
        get_int(x, tc, "num_kv_shared_layers", 0, 0, c->L, &c->shared_kv) ||
        get_int(x, tc, "hidden_size_per_layer_input", 0, 0, 1 << 20, &c->ple) ||
        get_float(x, tc, "rms_norm_eps", 1e-6, &c->eps) || layer_types(x, tc, c) || heads(x, tc, c) || ffn(x, tc, c) ||
        rope(x, tc, c))
        return -1;
    const ilm_json *sc = ilm_json_get(tc, "final_logit_softcapping");
    c->softcap = 30.0f;
    if (sc && sc->type == JSON_NULL) c->softcap = 0;
    else if (get_float(x, tc, "final_logit_softcapping", 30.0, &c->softcap)) return -1;
    c->k_eq_v = get_bool(tc, "attention_k_eq_v", false);
    c->tied = get_bool(tc, "tie_word_embeddings", get_bool(j, "tie_word_embeddings", true));
    if (get_bool(tc, "enable_moe_block", false) &&
        (get_int(x, tc, "num_experts", -1, 1, 65536, &c->n_expert) ||
         get_int(x, tc, "top_k_experts", -1, 1, c->n_expert, &c->n_expert_used) ||
         get_int(x, tc, "moe_intermediate_size", -1, 1, 1 << 20, &c->expert_ff)))
        return -1;
    if (c->kind == CV_DRAFTER) {
        if (get_int(x, j, "backbone_hidden_size", -1, 1, 1 << 20, &c->Ht) ||
            get_int(x, j, "num_centroids", 0, 0, 1 << 24, &c->n_centroids) ||
            get_int(x, j, "centroid_intermediate_top_k", 0, 0, 1 << 24, &c->centroid_top_k))
            return -1;
        c->ordered = get_bool(j, "use_ordered_embeddings", false);
    }
    return 0;
}

int cv_read_config(const char *hf_dir, cv_config *c, ilm_err *err) {
    size_t n = strlen(hf_dir) + 16, size;
    char *path = malloc(n);
    if (!path) return ilm_fail(err, "out of memory");
    snprintf(path, n, "%s/config.json", hf_dir);
    int rc = -1, fd = ilm_open_regular(path, &size, err);
    char *text = NULL;
    ilm_json *j = NULL;
    if (fd < 0) goto done;
    if (size > (64u << 20)) {
        ilm_fail(err, "%s: too large (%zu bytes)", path, size);
        goto done;
    }
    if (!(text = malloc(size + 1))) {
        ilm_fail(err, "out of memory");
        goto done;
    }
    size_t got = 0;
    for (ssize_t r; got < size && (r = read(fd, text + got, size - got)) > 0;) got += (size_t)r;
    if (got != size) {
        ilm_fail(err, "%s: read failed", path);
        goto done;
    }
    ilm_err jerr;
    if (!(j = ilm_json_parse(text, size, &jerr))) {
        ilm_fail(err, "%s: bad JSON: %s", path, jerr.msg);
        goto done;
    }
    ctx x = {path, err};
    rc = parse(&x, j, c);
done:
    if (fd >= 0) close(fd);
    ilm_json_free(j);
    free(text);
    free(path);
    return rc;
}

// --- keys ------------------------------------------------------------------------------------

typedef struct {
    ilm_gguf_writer *w;
    const char *prefix;
    ilm_err *err;
    int rc;
} kw;

static const char *key(kw *k, const char *suffix, char *buf, size_t cap) {
    snprintf(buf, cap, "%s.%s", k->prefix, suffix);
    return buf;
}
static void u32(kw *k, const char *s, uint32_t v) {
    char b[160];
    if (!k->rc) k->rc = ilm_gguf_writer_add_u32(k->w, key(k, s, b, sizeof b), v, k->err);
}
static void f32(kw *k, const char *s, float v) {
    char b[160];
    if (!k->rc) k->rc = ilm_gguf_writer_add_f32(k->w, key(k, s, b, sizeof b), v, k->err);
}
static void boolean(kw *k, const char *s, bool v) {
    char b[160];
    if (!k->rc) k->rc = ilm_gguf_writer_add_bool(k->w, key(k, s, b, sizeof b), v, k->err);
}
static void arr(kw *k, const char *s, int type, const void *d, int n) {
    char b[160];
    if (!k->rc) k->rc = ilm_gguf_writer_add_arr(k->w, key(k, s, b, sizeof b), type, d, (uint64_t)n, k->err);
}
static void general_u32(kw *k, const char *name, uint32_t v) {
    if (!k->rc) k->rc = ilm_gguf_writer_add_u32(k->w, name, v, k->err);
}
static void general_str(kw *k, const char *name, const char *v) {
    if (!k->rc) k->rc = ilm_gguf_writer_add_str(k->w, name, v, k->err);
}

static void pattern(kw *k, const cv_config *c) {
    uint8_t p[CV_MAX_LAYERS];
    for (int i = 0; i < c->L; i++) p[i] = c->sliding[i];
    arr(k, "attention.sliding_window_pattern", GGUF_BOOL, p, c->L);
}

// feed_forward_length: a scalar when every layer has the same width, else one per layer.
static void ffn_key(kw *k, const cv_config *c) {
    bool same = true;
    for (int i = 1; i < c->L; i++) same &= c->ffn[i] == c->ffn[0];
    if (same) u32(k, "feed_forward_length", (uint32_t)c->ffn[0]);
    else arr(k, "feed_forward_length", GGUF_I32, c->ffn, c->L);
}

static void head_dims(kw *k, const cv_config *c) {
    u32(k, "attention.key_length", (uint32_t)c->hd_full);
    u32(k, "attention.value_length", (uint32_t)c->hd_full);
    u32(k, "attention.key_length_swa", (uint32_t)c->hd_swa);
    u32(k, "attention.value_length_swa", (uint32_t)c->hd_swa);
}

static void rope_keys(kw *k, const cv_config *c) {
    u32(k, "rope.dimension_count", (uint32_t)c->hd_full);
    u32(k, "rope.dimension_count_swa", (uint32_t)c->hd_swa);
    f32(k, "rope.freq_base", c->rope_full);
    f32(k, "rope.freq_base_swa", c->rope_swa);
}

static int target_keys(kw *k, const cv_config *c, const cv_meta *m) {
    u32(k, "context_length", (uint32_t)c->ctx);
    u32(k, "embedding_length", (uint32_t)c->H);
    u32(k, "block_count", (uint32_t)c->L);
    u32(k, "attention.head_count", (uint32_t)c->nh);
    f32(k, "attention.layer_norm_rms_epsilon", c->eps);
    general_u32(k, "general.file_type", (uint32_t)m->ftype);
    u32(k, "attention.sliding_window", (uint32_t)c->window);
    pattern(k, c);
    u32(k, "attention.shared_kv_layers", (uint32_t)c->shared_kv);
    ffn_key(k, c);
    if (c->n_expert) {
        u32(k, "expert_feed_forward_length", (uint32_t)c->expert_ff);
        u32(k, "expert_count", (uint32_t)c->n_expert);
        u32(k, "expert_used_count", (uint32_t)c->n_expert_used);
    }
    u32(k, "embedding_length_per_layer_input", (uint32_t)c->ple);
    head_dims(k, c);
    arr(k, "attention.head_count_kv", GGUF_I32, c->kv_heads, c->L);
    rope_keys(k, c);
    // The reference converter never writes the softcap and loaders default to 30; a config
    // with another value gets the key so that the file is not silently wrong.
    if (c->softcap != 30.0f) f32(k, "final_logit_softcapping", c->softcap);
    return k->rc;
}

static int drafter_keys(kw *k, const cv_config *c, const cv_meta *m) {
    u32(k, "context_length", (uint32_t)c->ctx);
    u32(k, "embedding_length", (uint32_t)c->H);
    u32(k, "block_count", (uint32_t)c->L);
    ffn_key(k, c);
    u32(k, "attention.head_count", (uint32_t)c->nh);
    arr(k, "attention.head_count_kv", GGUF_I32, c->kv_heads, c->L);
    head_dims(k, c);
    f32(k, "attention.layer_norm_rms_epsilon", c->eps);
    u32(k, "attention.sliding_window", (uint32_t)c->window);
    pattern(k, c);
    rope_keys(k, c);
    if (m->layout == ILM_DRAFTER_MTP) {
        u32(k, "backbone_embedding_length", (uint32_t)c->Ht);
        boolean(k, "use_ordered_embeddings", c->ordered);
        u32(k, "centroid_count", (uint32_t)c->n_centroids);
        u32(k, "centroid_top_k", (uint32_t)c->centroid_top_k);
    } else {
        u32(k, "embedding_length_out", (uint32_t)c->Ht);
        u32(k, "nextn_predict_layers", (uint32_t)c->L);
        u32(k, "attention.shared_kv_layers", (uint32_t)c->shared_kv);
        u32(k, "embedding_length_per_layer_input", (uint32_t)c->ple);
        if (m->centroids) {  // the keys ik reads for a centroid head in this layout
            boolean(k, "use_ordered_embeddings", c->ordered);
            u32(k, "n_centroids", (uint32_t)c->n_centroids);
            u32(k, "centroid_top_k", (uint32_t)c->centroid_top_k);
        }
    }
    general_u32(k, "general.file_type", (uint32_t)m->ftype);
    return k->rc;
}

int cv_write_keys(ilm_gguf_writer *w, const cv_config *c, const cv_meta *m, ilm_err *err) {
    const char *arch = c->kind == CV_TARGET ? "gemma4" : m->layout == ILM_DRAFTER_MTP ? "gemma4_mtp" : "gemma4-assistant";
    kw k = {w, arch, err, 0};
    general_str(&k, "general.architecture", arch);
    general_str(&k, "general.type", "model");
    if (m->name) general_str(&k, "general.name", m->name);
    general_str(&k, "general.size_label", m->size_label);
    return c->kind == CV_TARGET ? target_keys(&k, c, m) : drafter_keys(&k, c, m);
}
