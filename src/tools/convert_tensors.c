// convert_tensors.c — checkpoint tensor names → GGUF names and shapes (docs/gemma4.md §3.3–3.5),
// and the output type of each tensor.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/types.h"
#include "tools/convert_impl.h"
#include "tools/quantize.h"

// Shape rules: the GGUF shape (ne[0] first) of a tensor, from the hyper-parameters.
enum {
    S_H, S_HD, S_Q, S_KV, S_O, S_UP, S_DOWN, S_SCALAR, S_PLE_GATE, S_PLE_PROJ, S_ROUTER, S_E, S_GATE_UP_EXPS,
    S_DOWN_EXPS, S_EMBD, S_PLE_EMBD, S_PLE_MPROJ, S_P, S_PRE, S_POST, S_CENTROIDS, S_V,
};

typedef struct {
    const char *hf, *gguf;
    int shape;
    bool required;
} name_map;

static const name_map layer_map[] = {
    {"input_layernorm.weight", "attn_norm.weight", S_H, true},
    {"layer_scalar", "layer_output_scale.weight", S_SCALAR, false},
    {"self_attn.q_proj.weight", "attn_q.weight", S_Q, true},
    {"self_attn.k_proj.weight", "attn_k.weight", S_KV, false},
    {"self_attn.v_proj.weight", "attn_v.weight", S_KV, false},
    {"self_attn.o_proj.weight", "attn_output.weight", S_O, true},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", S_HD, true},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", S_HD, false},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", S_H, true},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight", S_H, true},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight", S_H, true},
    {"mlp.gate_proj.weight", "ffn_gate.weight", S_UP, true},
    {"mlp.up_proj.weight", "ffn_up.weight", S_UP, true},
    {"mlp.down_proj.weight", "ffn_down.weight", S_DOWN, true},
    {"pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight", S_H, false},
    {"post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight", S_H, false},
    {"post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight", S_H, false},
    {"router.proj.weight", "ffn_gate_inp.weight", S_ROUTER, false},
    {"router.scale", "ffn_gate_inp.scale", S_H, false},
    {"router.per_expert_scale", "ffn_down_exps.scale", S_E, false},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight", S_GATE_UP_EXPS, false},
    {"experts.down_proj", "ffn_down_exps.weight", S_DOWN_EXPS, false},
    {"per_layer_input_gate.weight", "inp_gate.weight", S_PLE_GATE, false},
    {"per_layer_projection.weight", "proj.weight", S_PLE_PROJ, false},
    {"post_per_layer_input_norm.weight", "post_norm.weight", S_H, false},
};
#define N_LAYER_MAP (int)(sizeof layer_map / sizeof layer_map[0])

static const name_map global_map[] = {
    {"embed_tokens.weight", "token_embd.weight", S_EMBD, true},
    {"norm.weight", "output_norm.weight", S_H, true},
    {"embed_tokens_per_layer.weight", "per_layer_token_embd.weight", S_PLE_EMBD, false},
    {"per_layer_model_projection.weight", "per_layer_model_proj.weight", S_PLE_MPROJ, false},
    {"per_layer_projection_norm.weight", "per_layer_proj_norm.weight", S_P, false},
};

// Drafter tensors outside model.* (names per layout: ik `gemma4_mtp`, upstream `gemma4-assistant`).
static const struct {
    const char *hf, *mtp, *assistant;
    int shape;
} drafter_map[] = {
    {"pre_projection.weight", "mtp_pre_proj.weight", "nextn.pre_projection.weight", S_PRE},
    {"post_projection.weight", "mtp_post_proj.weight", "nextn.post_projection.weight", S_POST},
    {"masked_embedding.centroids.weight", "mtp_centroids.weight", "mtp.centroids.weight", S_CENTROIDS},
    {"masked_embedding.token_ordering", "mtp_token_ordering.weight", "mtp.token_ordering.weight", S_V},
};

static int shape_of(const cv_config *c, int rule, int layer, int64_t *ne) {
    const int hd = layer >= 0 && !c->sliding[layer] ? c->hd_full : c->hd_swa;
    const int64_t H = c->H, P = c->ple, F = layer >= 0 ? c->ffn[layer] : 0, kv = layer >= 0 ? c->kv_heads[layer] : 0;
    switch (rule) {
    case S_H: ne[0] = H; return 1;
    case S_HD: ne[0] = hd; return 1;
    case S_Q: ne[0] = H; ne[1] = (int64_t)c->nh * hd; return 2;
    case S_KV: ne[0] = H; ne[1] = kv * hd; return 2;
    case S_O: ne[0] = (int64_t)c->nh * hd; ne[1] = H; return 2;
    case S_UP: ne[0] = H; ne[1] = F; return 2;
    case S_DOWN: ne[0] = F; ne[1] = H; return 2;
    case S_SCALAR: return 0;
    case S_PLE_GATE: ne[0] = H; ne[1] = P; return 2;
    case S_PLE_PROJ: ne[0] = P; ne[1] = H; return 2;
    case S_ROUTER: ne[0] = H; ne[1] = c->n_expert; return 2;
    case S_E: ne[0] = c->n_expert; return 1;
    case S_GATE_UP_EXPS: ne[0] = H; ne[1] = 2 * (int64_t)c->expert_ff; ne[2] = c->n_expert; return 3;
    case S_DOWN_EXPS: ne[0] = c->expert_ff; ne[1] = H; ne[2] = c->n_expert; return 3;
    case S_EMBD: ne[0] = H; ne[1] = c->V; return 2;
    case S_PLE_EMBD: ne[0] = P * c->L; ne[1] = c->V; return 2;
    case S_PLE_MPROJ: ne[0] = H; ne[1] = P * c->L; return 2;
    case S_P: ne[0] = P; return 1;
    case S_PRE: ne[0] = 2 * (int64_t)c->Ht; ne[1] = H; return 2;
    case S_POST: ne[0] = H; ne[1] = c->Ht; return 2;
    case S_CENTROIDS: ne[0] = H; ne[1] = c->n_centroids; return 2;
    case S_V: ne[0] = c->V; return 1;
    }
    return -1;
}

int ilm_convert_hf_name(const char *gguf, char *buf, size_t cap) {
    const char *pfx = "model.language_model.";
    if (!strncmp(gguf, "blk.", 4)) {
        char *end;
        long layer = strtol(gguf + 4, &end, 10);
        if (end == gguf + 4 || *end != '.' || layer < 0) return -1;
        for (int i = 0; i < N_LAYER_MAP; i++)
            if (!strcmp(end + 1, layer_map[i].gguf))
                return (size_t)snprintf(buf, cap, "%slayers.%ld.%s", pfx, layer, layer_map[i].hf) < cap ? 0 : -1;
        return -1;
    }
    for (size_t i = 0; i < sizeof global_map / sizeof global_map[0]; i++)
        if (!strcmp(gguf, global_map[i].gguf)) return (size_t)snprintf(buf, cap, "%s%s", pfx, global_map[i].hf) < cap ? 0 : -1;
    return -1;
}

typedef struct {
    const ilm_st *st;
    const cv_config *c;
    const ilm_convert_opts *o;
    cv_tensor *t;
    size_t n, cap;
    int skipped;          // tensors of other towers
    bool *seen;           // [L * N_LAYER_MAP + globals]
    ilm_err *err;
} plan;

static cv_tensor *add(plan *p, ilm_err *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        cv_tensor *t = realloc(p->t, cap * sizeof *t);
        if (!t) {
            ilm_fail(err, "out of memory");
            return NULL;
        }
        p->t = t;
        p->cap = cap;
    }
    cv_tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static bool is_float_dtype(int d) { return d == ILM_ST_F32 || d == ILM_ST_F16 || d == ILM_ST_BF16; }
static int ggml_of(int d) { return d == ILM_ST_F16 ? ILM_TYPE_F16 : d == ILM_ST_BF16 ? ILM_TYPE_BF16 : ILM_TYPE_F32; }

// The planned tensor for checkpoint tensor `hf` (W4A16: its base name + ".weight") under `gguf`.
static int add_mapped(plan *p, const ilm_st_tensor *src, const char *hf, const char *gguf, int rule, int layer, int kind) {
    cv_tensor *t = add(p, p->err);
    if (!t) return -1;
    snprintf(t->name, sizeof t->name, "%s", gguf);
    t->kind = kind;
    t->src = src;
    t->source_weight = true;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    int nd = shape_of(p->c, rule, layer, t->ne);
    t->n_dims = nd;
    // the checkpoint's shape, outermost first, must be the reverse of ne (a [1] for a scalar)
    int64_t have[ILM_ST_MAX_DIMS];
    int hn;
    bool f16_exact = true;
    if (kind == CV_W4A16) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(hf) - strlen(".weight")), hf);
        if (cv_w4a16_check(p->st, base, &t->src, &t->scale, have, &f16_exact, p->err)) return -1;
        hn = 2;
    } else {
        hn = src->n_dims;
        memcpy(have, src->shape, sizeof have);
        bool ok = kind == CV_TOKEN_ORDER ? (src->dtype == ILM_ST_I64 || src->dtype == ILM_ST_I32) : is_float_dtype(src->dtype);
        if (!ok)
            return ilm_fail(p->err, "tensor %s: dtype %s is not supported here", src->name, ilm_st_dtype_name(src->dtype));
    }
    bool match = rule == S_SCALAR ? (hn == 0 || (hn == 1 && have[0] == 1)) : hn == nd;
    for (int d = 0; match && rule != S_SCALAR && d < nd; d++) match = have[hn - 1 - d] == t->ne[d];
    if (!match) {
        char want[96] = "[", got[96] = "[";
        for (int d = nd - 1; d >= 0; d--)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%lld%s", (long long)t->ne[d], d ? ", " : "");
        for (int d = 0; d < hn; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%lld%s", (long long)have[d], d + 1 < hn ? ", " : "");
        return ilm_fail(p->err, "tensor %s: shape %s], expected %s] from config.json", hf, got, rule == S_SCALAR ? "[1" : want);
    }
    // output type: 0-D/1-D in F32 (as the reference converter), weights per --type (the
    // quantize rules: router and unblockable rows stay, a Q4_0 file's tied head is Q8_0)
    const int src_type = kind == CV_W4A16 ? ILM_TYPE_Q4_0 : kind == CV_PLAIN ? ggml_of(src->dtype) : ILM_TYPE_F32;
    const int target = p->o->type;
    if (nd <= 1 || kind == CV_TOKEN_ORDER) {
        t->type = ILM_TYPE_F32;
    } else if (kind == CV_W4A16) {
        // default: Q4_0, lossless; a float --type dequantizes (exactly), q8_0/q4_0 follow the rules
        int want = target < 0 ? ILM_TYPE_Q4_0
                   : target == ILM_TYPE_Q8_0 || target == ILM_TYPE_Q4_0
                       ? ilm_quant_tensor_type(t->name, nd, ILM_TYPE_F32, target, false, !p->c->tied)
                       : target;
        if (want == ILM_TYPE_Q4_0 && (!f16_exact || t->ne[0] % 32)) {
            fprintf(stderr, "convert: note: %s: %s; kept exact as F32\n", hf,
                    t->ne[0] % 32 ? "rows are not a multiple of 32" : "some group scales are not exact in F16");
            want = ILM_TYPE_F32;
        }
        t->type = want;
    } else {
        int keep = target == ILM_TYPE_F32 || target == ILM_TYPE_F16 || target == ILM_TYPE_BF16 ? target : src_type;
        t->type = target == ILM_TYPE_Q8_0 || target == ILM_TYPE_Q4_0
                      ? ilm_quant_tensor_type(t->name, nd, keep, target, false, !p->c->tied)
                      : keep;
        if ((t->type == ILM_TYPE_Q8_0 || t->type == ILM_TYPE_Q4_0) && t->ne[0] % 32) t->type = keep;
    }
    return 0;
}

static int map_layer_tensor(plan *p, const ilm_st_tensor *src, const char *hf, const char *rest, int kind) {
    char *end;
    long layer = strtol(rest, &end, 10);
    if (end == rest || *end != '.' || layer < 0 || layer >= p->c->L)
        return ilm_fail(p->err, "tensor %s: layer index out of range (%d layers)", hf, p->c->L);
    for (int i = 0; i < N_LAYER_MAP; i++)
        if (!strcmp(end + 1, layer_map[i].hf)) {
            char g[112];
            snprintf(g, sizeof g, "blk.%ld.%s", layer, layer_map[i].gguf);
            p->seen[layer * N_LAYER_MAP + i] = true;
            return add_mapped(p, src, hf, g, layer_map[i].shape, (int)layer, kind);
        }
    return ilm_fail(p->err, "tensor %s: unknown name (no GGUF mapping)", hf);
}

// One checkpoint tensor. W4A16 parts other than weight_packed are consumed by it.
static int map_tensor(plan *p, const ilm_st_tensor *src) {
    const cv_config *c = p->c;
    char hf[256];
    int kind = CV_PLAIN;
    size_t len = strlen(src->name);
    if (len >= sizeof hf) return ilm_fail(p->err, "tensor %.64s...: name too long", src->name);
    memcpy(hf, src->name, len + 1);
    const char *suffixes[] = {".weight_scale", ".weight_shape", ".weight_zero_point", ".weight_g_idx"};
    for (int i = 0; i < 4; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && !strcmp(hf + len - sl, suffixes[i])) {
            if (!c->w4a16) return ilm_fail(p->err, "tensor %s: quantized tensor in a checkpoint without quantization_config", hf);
            if (i >= 2) return ilm_fail(p->err, "tensor %s: only symmetric W4A16 without zero points is supported", hf);
            return 0;  // read with its weight_packed
        }
    }
    if (len > 14 && !strcmp(hf + len - 14, ".weight_packed")) {
        if (!c->w4a16) return ilm_fail(p->err, "tensor %s: quantized tensor in a checkpoint without quantization_config", hf);
        strcpy(hf + len - 14, ".weight");
        kind = CV_W4A16;
    }
    const char *rest = NULL;
    if (c->kind == CV_TARGET) {
        if (!strncmp(hf, "model.language_model.", 21)) rest = hf + 21;
        else if (!c->multimodal && !strncmp(hf, "model.", 6)) rest = hf + 6;
        else if (!strcmp(hf, "lm_head.weight")) {
            if (c->tied) return 0;  // the tied head is token_embd
            return add_mapped(p, src, hf, "output.weight", S_EMBD, -1, kind);
        } else if (c->multimodal) {
            p->skipped++;  // vision / audio towers and their projectors
            return 0;
        }
    } else {
        for (size_t i = 0; i < sizeof drafter_map / sizeof drafter_map[0]; i++)
            if (!strcmp(hf, drafter_map[i].hf)) {
                const char *g = p->o->drafter_layout == ILM_DRAFTER_MTP ? drafter_map[i].mtp : drafter_map[i].assistant;
                if (drafter_map[i].shape == S_CENTROIDS || drafter_map[i].shape == S_V) {
                    if (!c->n_centroids || c->V % c->n_centroids)
                        return ilm_fail(p->err, "tensor %s: config.json num_centroids %d does not divide the vocabulary (%d)",
                                        hf, c->n_centroids, c->V);
                }
                return add_mapped(p, src, hf, g, drafter_map[i].shape, -1,
                                  drafter_map[i].shape == S_V ? CV_TOKEN_ORDER : kind);
            }
        if (!strncmp(hf, "model.", 6)) rest = hf + 6;
    }
    if (!rest) return ilm_fail(p->err, "tensor %s: unknown name (no GGUF mapping)", hf);
    if (!strncmp(rest, "layers.", 7)) return map_layer_tensor(p, src, hf, rest + 7, kind);
    for (size_t i = 0; i < sizeof global_map / sizeof global_map[0]; i++)
        if (!strcmp(rest, global_map[i].hf)) {
            p->seen[c->L * N_LAYER_MAP + (int)i] = true;
            return add_mapped(p, src, hf, global_map[i].gguf, global_map[i].shape, -1, kind);
        }
    return ilm_fail(p->err, "tensor %s: unknown name (no GGUF mapping)", hf);
}

static int add_rope_freqs(plan *p) {
    cv_tensor *t = add(p, p->err);
    if (!t) return -1;
    snprintf(t->name, sizeof t->name, "rope_freqs.weight");
    t->kind = CV_ROPE_FREQS;
    t->n_dims = 1;
    t->ne[0] = p->c->hd_full / 2;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    t->type = ILM_TYPE_F32;
    return 0;
}

int cv_plan(const ilm_st *st, const cv_config *c, const ilm_convert_opts *o, cv_tensor **out, size_t *n, ilm_err *err) {
    plan p = {.st = st, .c = c, .o = o, .err = err};
    int rc = -1;
    const size_t n_seen = (size_t)c->L * N_LAYER_MAP + sizeof global_map / sizeof global_map[0];
    if (!(p.seen = calloc(n_seen, sizeof *p.seen))) return ilm_fail(err, "out of memory");
    // the target's rope_freqs comes first, the assistant's last (the reference converters' order)
    if (c->kind == CV_TARGET && add_rope_freqs(&p)) goto done;
    for (size_t i = 0; i < st->n_tensors; i++)
        if (map_tensor(&p, &st->tensors[i])) goto done;
    if (c->kind == CV_DRAFTER && o->drafter_layout == ILM_DRAFTER_ASSISTANT && add_rope_freqs(&p)) goto done;
    // required tensors
    const char *pfx = c->kind == CV_TARGET ? (c->multimodal ? "model.language_model." : "model.") : "model.";
    for (size_t i = 0; i < sizeof global_map / sizeof global_map[0]; i++)
        if (global_map[i].required && !p.seen[c->L * N_LAYER_MAP + (int)i]) {
            ilm_fail(err, "missing tensor %s%s (%s)", pfx, global_map[i].hf, global_map[i].gguf);
            goto done;
        }
    for (int l = 0; l < c->L; l++)
        for (int i = 0; i < N_LAYER_MAP; i++)
            if (layer_map[i].required && !p.seen[l * N_LAYER_MAP + i]) {
                ilm_fail(err, "missing tensor %slayers.%d.%s (blk.%d.%s)", pfx, l, layer_map[i].hf, l, layer_map[i].gguf);
                goto done;
            }
    if (c->kind == CV_DRAFTER) {
        for (int k = 0; k < 2; k++) {
            bool found = false;
            for (size_t i = 0; i < p.n; i++)
                found |= !strcmp(p.t[i].name, o->drafter_layout == ILM_DRAFTER_MTP ? drafter_map[k].mtp : drafter_map[k].assistant);
            if (!found) {
                ilm_fail(err, "missing tensor %s", drafter_map[k].hf);
                goto done;
            }
        }
    }
    if (p.skipped) fprintf(stderr, "convert: note: %d tensors outside the text model (vision/audio) skipped\n", p.skipped);
    *out = p.t;
    *n = p.n;
    p.t = NULL;
    rc = 0;
done:
    free(p.t);
    free(p.seen);
    return rc;
}
