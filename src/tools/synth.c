// synth.c — `ironlm synth`: real-shape Gemma 4 GGUF files with seeded random weights.
//
// The variant tables of docs/gemma4.md §1.1–1.4 become a list of tensor specs (names and
// shapes of §3.3 / §3.4) and the metadata of §3.2 / §3.4 / §3.6; the file is then streamed to
// the GGUF writer a chunk of rows at a time, generated in parallel, so memory use is a few
// MiB whatever the model size.
//
// Weights. Every row has its own PRNG stream (splitmix64 seeded from seed, tensor, row), so
// the bytes do not depend on the thread count. Q4_0/Q8_0 blocks are generated directly rather
// than by quantizing floats (quantizing costs an fmaf per weight; a 12B Q4_0 file is 7 GB):
// random small-integer codes with a bell-ish distribution plus one extreme code per block,
// and a random fp16 scale. Such a block is exactly what ilm_quantize_row_* makes of its own
// dequantized values (Q4_0: one nibble 0 = the max-|x| element, m = -8d; Q8_0: one |q| = 127,
// d = amax/127 > 0), which tests/test_synth.c checks. Scales make every matrix ~N(0, 1/K)
// (std 1/sqrt(K), K = input width) so each projection keeps the RMS of its input; norm
// weights ~1 (post-norms 0.5, q-norm 0.25 to keep attention soft), layer scalars 0.8–1.0:
// activations stay O(1)–O(10) through every layer.
//
// --layers N keeps the first N layers with the variant's S/F pattern. For the KV-sharing
// models (E2B, E4B) the shared count scales with N — round(N * n_shared / L) — but layers
// 0 .. first full layer always own K/V, so both layer types have an owner to share from;
// on E2B the double-wide MLP goes with the shared layers, as in the real model.
#define _POSIX_C_SOURCE 200809L
#include "tools/synth.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/gguf_write.h"
#include "simd/half.h"
#include "simd/kernels.h"
#include "tools/quantize.h"

// ---- variants (docs/gemma4.md §1.1, §1.2) ----------------------------------------------

typedef struct {
    const char *name, *label;
    int L, H, F;            // layers, hidden, MLP width
    int nh, nkv_s, nkv_f;   // query heads; KV heads on sliding / full layers
    int window, period;     // sliding window; a full layer every `period` layers
    int n_shared;           // trailing KV-shared layers
    int ple;                // per-layer-embedding width P (0: none)
    bool k_eq_v;            // full layers have no V projection
    bool wide_shared;       // KV-shared layers have a double-wide MLP (E2B)
    int ctx;
    bool ctx_inferred;
    int n_expert, n_expert_used, F_expert;
    int Hd, Fd, nh_d;       // drafter: hidden, MLP, query heads
    bool centroids;         // drafter has the centroid head
} variant;

static const variant VARIANTS[] = {
    {"e2b", "E2B", 35, 1536, 6144, 8, 1, 1, 512, 5, 20, 256, false, true, 131072, true, 0, 0, 0, 256, 2048, 4, true},
    {"e4b", "E4B", 42, 2560, 10240, 8, 2, 2, 512, 6, 18, 256, false, false, 131072, true, 0, 0, 0, 256, 2048, 4, true},
    {"12b", "12B", 48, 3840, 15360, 16, 8, 1, 1024, 6, 0, 0, true, false, 262144, false, 0, 0, 0, 1024, 8192, 16, false},
    {"26b-a4b", "26B-A4B", 30, 2816, 2112, 16, 8, 2, 1024, 6, 0, 0, true, false, 262144, false, 128, 8, 704, 1024, 8192, 16,
     false},
    {"31b", "31B", 60, 5376, 21504, 32, 16, 4, 1024, 6, 0, 0, true, false, 262144, false, 0, 0, 0, 1024, 8192, 32, false},
};

enum {
    REAL_VOCAB = 262144,
    HD_SWA = 256,
    HD_FULL = 512,
    ROPE_FREQS = 256,       // rope_freqs.weight entries (= HD_FULL / 2)
    ROPE_ROTATED = 64,      // proportional RoPE: int(0.25 * 512 / 2) pairs rotate (§2.6)
    N_CENTROIDS = 2048,
    CENTROID_TOP_K = 32,
    MAX_LAYERS = 64,
    BYTE_TOKENS_AT = 238,   // [I] id of <0x00>
};

// The model as written: the variant with its layer count applied.
typedef struct {
    const variant *v;
    int L, n_shared;
    bool sliding[MAX_LAYERS];
    int F[MAX_LAYERS];
    int V;
} model_plan;

static void plan_model(model_plan *p, const variant *v, int layers, int vocab) {
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

// ---- tensor specs ----------------------------------------------------------------------

enum { INIT_MATRIX, INIT_NORM, INIT_ROPE_FREQS, INIT_ORDERING };

typedef struct {
    char name[64];
    int type, n_dims;
    int64_t ne[4];
    int init;
    float a, b;   // MATRIX: a = std; NORM: a = centre, b = half-width of the uniform spread
} tspec;

typedef struct {
    tspec *t;
    int n, cap;
    int target;   // weight type
} tlist;

static int add_t(tlist *l, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2, int init, float a,
                 float b, ilm_err *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        tspec *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) return ilm_fail(err, "out of memory");
        l->t = t;
        l->cap = cap;
    }
    tspec *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->ne[2] = n_dims > 2 ? ne2 : 1;
    t->ne[3] = 1;
    t->init = init;
    t->a = a;
    t->b = b;
    // the same type rule as `ironlm quantize` (default mix): LM head Q8_0 under Q4_0,
    // router and 1-D tensors F32
    t->type = init == INIT_ORDERING ? ILM_TYPE_I32
                                    : ilm_quant_tensor_type(name, n_dims, ILM_TYPE_F32, l->target, false, false);
    return 0;
}

static float inv_sqrt(int64_t k) { return (float)(1.0 / sqrt((double)k)); }

#define MAT2(nm, k, n) add_t(l, nm, 2, k, n, 1, INIT_MATRIX, inv_sqrt(k), 0, err)
#define NORM1(nm, n, c, s) add_t(l, nm, 1, n, 1, 1, INIT_NORM, c, s, err)

static int blk_name(char *buf, size_t n, int i, const char *suffix) {
    return snprintf(buf, n, "blk.%d.%s", i, suffix) >= (int)n;
}

// Target tensors, in the converter's order (docs/gemma4.md §3.3; fixtures/ik README).
static int list_target(tlist *l, const model_plan *p, ilm_err *err) {
    const variant *v = p->v;
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
static int list_drafter(tlist *l, const model_plan *p, ilm_err *err) {
    const variant *v = p->v;
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

// ---- vocabulary (docs/gemma4.md §1.5, §3.6) ----------------------------------------------

enum { TOK_NORMAL = 1, TOK_CONTROL = 3, TOK_USER = 4, TOK_BYTE = 6 };

typedef struct {
    char **text;     // V pointers into `buf`
    char *buf;
    int32_t *type;
    float *score;
    const char **merges;
    int n_merges;
} vocab;

static void vocab_free(vocab *vb) {
    free(vb->text);
    free(vb->buf);
    free(vb->type);
    free(vb->score);
}

typedef struct {
    int id;
    const char *text;
    int type;
} fixed_token;

// Special tokens at the ids the real vocabulary uses; [I] marks the ones not confirmed
// (<mask>, the newline runs beyond "\n", the multimodal marker texts).
static const fixed_token FIXED_TOKENS[] = {
    {0, "<pad>", TOK_CONTROL}, {1, "<eos>", TOK_CONTROL}, {2, "<bos>", TOK_CONTROL}, {3, "<unk>", TOK_CONTROL},
    {4, "<mask>", TOK_CONTROL}, {46, "<|tool>", TOK_CONTROL}, {47, "<tool|>", TOK_CONTROL},
    {48, "<|tool_call>", TOK_USER}, {49, "<tool_call|>", TOK_USER}, {50, "<|tool_response>", TOK_USER},
    {51, "<tool_response|>", TOK_USER}, {52, "<|\"|>", TOK_USER}, {98, "<|think|>", TOK_CONTROL},
    {100, "<|channel>", TOK_USER}, {101, "<channel|>", TOK_USER}, {105, "<|turn>", TOK_CONTROL},
    {106, "<turn|>", TOK_CONTROL}, {107, "\n", TOK_NORMAL}, {108, "\n\n", TOK_NORMAL}, {109, "\n\n\n", TOK_NORMAL},
    {110, "\n\n\n\n", TOK_NORMAL}, {255999, "<|image>", TOK_CONTROL}, {256000, "<|audio>", TOK_CONTROL},
    {258880, "<|image|>", TOK_CONTROL}, {258881, "<|audio|>", TOK_CONTROL}, {258882, "<image|>", TOK_CONTROL},
    {258883, "<audio|>", TOK_CONTROL}, {258884, "<|video|>", TOK_CONTROL},
};

// A few merges, so BPE has something to do ("▁" is U+2581, the space marker).
static const char *const MERGES[] = {
    "\xe2\x96\x81 t", "h e", "\xe2\x96\x81t he", "i n", "e r", "a n", "o n", "r e",
    "\xe2\x96\x81 a", "\xe2\x96\x81 s", "o u", "e n", "a t", "o r", "\xe2\x96\x81 i", "\xe2\x96\x81 w",
};

enum { VOCAB_MIN = 2048, TOK_MAX_LEN = 24 };  // the fixed tokens need ~620 ids; centroids 2048 buckets

static int vocab_build(vocab *vb, int V, ilm_err *err) {
    memset(vb, 0, sizeof *vb);
    vb->text = calloc((size_t)V, sizeof *vb->text);
    vb->buf = malloc((size_t)V * TOK_MAX_LEN);
    vb->type = malloc((size_t)V * sizeof *vb->type);
    vb->score = malloc((size_t)V * sizeof *vb->score);
    if (!vb->text || !vb->buf || !vb->type || !vb->score) {
        vocab_free(vb);
        memset(vb, 0, sizeof *vb);
        return ilm_fail(err, "out of memory building the vocabulary");
    }
    for (int i = 0; i < V; i++) {
        vb->text[i] = vb->buf + (size_t)i * TOK_MAX_LEN;
        vb->text[i][0] = 0;
        vb->type[i] = TOK_NORMAL;
        vb->score[i] = -1000.0f;  // what the converter writes (its scores are placeholders too)
    }
    for (size_t k = 0; k < sizeof FIXED_TOKENS / sizeof FIXED_TOKENS[0]; k++) {
        const fixed_token *f = &FIXED_TOKENS[k];
        if (f->id >= V) continue;
        snprintf(vb->text[f->id], TOK_MAX_LEN, "%s", f->text);
        vb->type[f->id] = f->type;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(vb->text[BYTE_TOKENS_AT + b], TOK_MAX_LEN, "<0x%02X>", b);
        vb->type[BYTE_TOKENS_AT + b] = TOK_BYTE;
    }
    // single characters: printable ASCII, tab, "▁"; then the merge results
    int id = BYTE_TOKENS_AT + 256;
    for (int c = 0x21; c < 0x7f; c++) snprintf(vb->text[id++], TOK_MAX_LEN, "%c", c);
    snprintf(vb->text[id++], TOK_MAX_LEN, "\t");
    snprintf(vb->text[id++], TOK_MAX_LEN, "\xe2\x96\x81");
    for (size_t m = 0; m < sizeof MERGES / sizeof MERGES[0]; m++) {
        const char *sp = strchr(MERGES[m] + 1, ' ');
        snprintf(vb->text[id++], TOK_MAX_LEN, "%.*s%s", (int)(sp - MERGES[m]), MERGES[m], sp + 1);
    }
    // everything else: unique placeholders, like the real vocabulary's unused slots
    int unused = 0;
    for (int i = 0; i < V; i++)
        if (!vb->text[i][0]) snprintf(vb->text[i], TOK_MAX_LEN, "<unused%d>", unused++);
    vb->merges = (const char **)MERGES;
    vb->n_merges = (int)(sizeof MERGES / sizeof MERGES[0]);
    return 0;
}

// A short Gemma-4-style chat template (docs/gemma4.md §3.8), not Google's.
static const char CHAT_TEMPLATE[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}<|turn>{{ role }}\n{{ message['content'] | trim }}"
    "<turn|>\n{% endfor %}{% if add_generation_prompt %}<|turn>model\n{% endif %}";

static int write_tokenizer(ilm_gguf_writer *w, const vocab *vb, int V, bool suppress, ilm_err *err) {
    if (ilm_gguf_writer_add_str(w, "tokenizer.ggml.model", "gemma4", err) ||
        ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)vb->text, (uint64_t)V, err) ||
        ilm_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_F32, vb->score, (uint64_t)V, err) ||
        ilm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_I32, vb->type, (uint64_t)V, err) ||
        ilm_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", vb->merges, (uint64_t)vb->n_merges, err) ||
        ilm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 2, err) ||
        ilm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 1, err) ||
        ilm_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 3, err) ||
        ilm_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", 0, err) ||
        ilm_gguf_writer_add_u32(w, "tokenizer.ggml.mask_token_id", 4, err) ||
        ilm_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true, err) ||
        ilm_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false, err) ||
        ilm_gguf_writer_add_str(w, "tokenizer.chat_template", CHAT_TEMPLATE, err) ||
        ilm_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", false, err))
        return -1;
    if (suppress) {  // 12B (ggml-org converter): <image|>, <audio|> [I]
        const int32_t ids[2] = {258882, 258883};
        if (V > 258883 && ilm_gguf_writer_add_arr(w, "tokenizer.ggml.suppress_tokens", GGUF_I32, ids, 2, err))
            return -1;
    }
    return 0;
}

// ---- metadata (docs/gemma4.md §3.2, §3.4) ------------------------------------------------

static void size_label(uint64_t params, char *buf, size_t n) {
    if (params >= 1000000000ull) snprintf(buf, n, "%.1fB", (double)params / 1e9);
    else snprintf(buf, n, "%.0fM", (double)params / 1e6);
}

// general.description: what this file is, and every value that rests on an inference [I].
// No paths and no host information.
static void describe(char *buf, size_t n, const model_plan *p, const ilm_synth_opts *o) {
    const variant *v = p->v;
    size_t k = 0;
#define PUT(...) (k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__))
    PUT("Synthetic Gemma 4 %s%s written by ironlm synth: random weights (seed %" PRIu64 "), not a trained model. "
        "Tensor names, shapes and metadata follow gemma4.md sections 1 and 3",
        v->label, o->drafter ? " MTP drafter (gemma4_mtp layout)" : "", o->seed);
    if (!o->drafter && p->L < v->L)
        PUT("; truncated to the first %d of %d layers (%d KV-shared)", p->L, v->L, p->n_shared);
    PUT(". Vocabulary: %d placeholder tokens with the special tokens at their real ids. "
        "Inferred values [I]: byte tokens <0x00>..<0xFF> at ids %d..%d; <mask> at 4; newline runs at 108..110; "
        "multimodal marker texts at 255999, 256000, 258880..258884; scores -1000",
        p->V, BYTE_TOKENS_AT, BYTE_TOKENS_AT + 255);
    if (v->ctx_inferred) PUT("; context_length %d (config default)", v->ctx);
    if (!strcmp(v->name, "12b")) PUT("; suppress_tokens 258882, 258883");
    if (o->drafter && (!strcmp(v->name, "e4b") || !strcmp(v->name, "26b-a4b")))
        PUT("; drafter size not published, shapes from the converter table");
    PUT(".");
#undef PUT
}

static int write_common_attn(ilm_gguf_writer *w, const char *arch, const model_plan *p, ilm_err *err) {
    (void)p;
    char key[96];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    return ilm_gguf_writer_add_u32(w, K("attention.key_length"), HD_FULL, err) ||
                   ilm_gguf_writer_add_u32(w, K("attention.value_length"), HD_FULL, err) ||
                   ilm_gguf_writer_add_u32(w, K("attention.key_length_swa"), HD_SWA, err) ||
                   ilm_gguf_writer_add_u32(w, K("attention.value_length_swa"), HD_SWA, err)
               ? -1
               : 0;
#undef K
}

static int write_rope(ilm_gguf_writer *w, const char *arch, ilm_err *err) {
    char key[96];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    return ilm_gguf_writer_add_u32(w, K("rope.dimension_count"), HD_FULL, err) ||
                   ilm_gguf_writer_add_u32(w, K("rope.dimension_count_swa"), HD_SWA, err) ||
                   ilm_gguf_writer_add_f32(w, K("rope.freq_base"), 1e6f, err) ||
                   ilm_gguf_writer_add_f32(w, K("rope.freq_base_swa"), 1e4f, err)
               ? -1
               : 0;
#undef K
}

// Key order of the converters (fixtures/ik README): general, hyper-parameters, tokenizer.
static int write_metadata(ilm_gguf_writer *w, const model_plan *p, const ilm_synth_opts *o, uint64_t params,
                          const vocab *vb, ilm_err *err) {
    const variant *v = p->v;
    const char *arch = o->drafter ? "gemma4_mtp" : "gemma4";
    char name[96], label[32], desc[1024], key[96];
    snprintf(name, sizeof name, "Gemma 4 %s%s (synthetic)", v->label, o->drafter ? " assistant" : "");
    size_label(params, label, sizeof label);
    describe(desc, sizeof desc, p, o);
    const int L = o->drafter ? 4 : p->L;
    uint8_t swa[MAX_LAYERS];
    int32_t nkv[MAX_LAYERS], ff[MAX_LAYERS];
    for (int i = 0; i < L; i++) {
        bool sl = o->drafter ? i < 3 : p->sliding[i];
        swa[i] = sl;
        nkv[i] = sl ? v->nkv_s : v->nkv_f;
        ff[i] = p->F[i];
    }
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    int rc = ilm_gguf_writer_add_str(w, "general.architecture", arch, err) ||
             ilm_gguf_writer_add_str(w, "general.type", "model", err) ||
             ilm_gguf_writer_add_str(w, "general.name", name, err) ||
             ilm_gguf_writer_add_str(w, "general.size_label", label, err) ||
             ilm_gguf_writer_add_str(w, "general.description", desc, err) ||
             ilm_gguf_writer_add_u32(w, K("context_length"), (uint32_t)v->ctx, err);
    if (rc) return -1;
    if (o->drafter) {
        rc = ilm_gguf_writer_add_u32(w, K("embedding_length"), (uint32_t)v->Hd, err) ||
             ilm_gguf_writer_add_u32(w, K("block_count"), 4, err) ||
             ilm_gguf_writer_add_u32(w, K("feed_forward_length"), (uint32_t)v->Fd, err) ||
             ilm_gguf_writer_add_u32(w, K("attention.head_count"), (uint32_t)v->nh_d, err) ||
             ilm_gguf_writer_add_arr(w, K("attention.head_count_kv"), GGUF_I32, nkv, 4, err) ||
             write_common_attn(w, arch, p, err) ||
             ilm_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f, err) ||
             ilm_gguf_writer_add_u32(w, K("attention.sliding_window"), (uint32_t)v->window, err) ||
             ilm_gguf_writer_add_arr(w, K("attention.sliding_window_pattern"), GGUF_BOOL, swa, 4, err) ||
             write_rope(w, arch, err) ||
             ilm_gguf_writer_add_u32(w, K("backbone_embedding_length"), (uint32_t)v->H, err) ||
             ilm_gguf_writer_add_bool(w, K("use_ordered_embeddings"), v->centroids, err) ||
             ilm_gguf_writer_add_u32(w, K("centroid_count"), v->centroids ? N_CENTROIDS : 0, err) ||
             ilm_gguf_writer_add_u32(w, K("centroid_top_k"), v->centroids ? CENTROID_TOP_K : 0, err) ||
             ilm_gguf_writer_add_u32(w, "general.file_type", (uint32_t)ilm_ftype_of(o->type), err);
    } else {
        rc = ilm_gguf_writer_add_u32(w, K("embedding_length"), (uint32_t)v->H, err) ||
             ilm_gguf_writer_add_u32(w, K("block_count"), (uint32_t)L, err) ||
             ilm_gguf_writer_add_u32(w, K("attention.head_count"), (uint32_t)v->nh, err) ||
             ilm_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f, err) ||
             ilm_gguf_writer_add_u32(w, "general.file_type", (uint32_t)ilm_ftype_of(o->type), err) ||
             ilm_gguf_writer_add_u32(w, K("attention.sliding_window"), (uint32_t)v->window, err) ||
             ilm_gguf_writer_add_arr(w, K("attention.sliding_window_pattern"), GGUF_BOOL, swa, (uint64_t)L, err) ||
             ilm_gguf_writer_add_u32(w, K("attention.shared_kv_layers"), (uint32_t)p->n_shared, err);
        if (rc) return -1;
        // E2B's MLP width differs per layer: an array (§3.2); a scalar everywhere else
        rc = v->wide_shared ? ilm_gguf_writer_add_arr(w, K("feed_forward_length"), GGUF_I32, ff, (uint64_t)L, err)
                            : ilm_gguf_writer_add_u32(w, K("feed_forward_length"), (uint32_t)v->F, err);
        if (rc) return -1;
        if (v->n_expert) {
            rc = ilm_gguf_writer_add_u32(w, K("expert_feed_forward_length"), (uint32_t)v->F_expert, err) ||
                 ilm_gguf_writer_add_u32(w, K("expert_count"), (uint32_t)v->n_expert, err) ||
                 ilm_gguf_writer_add_u32(w, K("expert_used_count"), (uint32_t)v->n_expert_used, err);
            if (rc) return -1;
        }
        rc = ilm_gguf_writer_add_u32(w, K("embedding_length_per_layer_input"), (uint32_t)v->ple, err) ||
             write_common_attn(w, arch, p, err);
        if (rc) return -1;
        // per-layer KV heads as an i32 array where sliding and full differ, else a scalar (§3.2)
        rc = v->nkv_s != v->nkv_f
                 ? ilm_gguf_writer_add_arr(w, K("attention.head_count_kv"), GGUF_I32, nkv, (uint64_t)L, err)
                 : ilm_gguf_writer_add_u32(w, K("attention.head_count_kv"), (uint32_t)v->nkv_s, err);
        rc = rc || write_rope(w, arch, err) || ilm_gguf_writer_add_f32(w, K("final_logit_softcapping"), 30.0f, err);
    }
#undef K
    if (rc) return -1;
    if (write_tokenizer(w, vb, p->V, !o->drafter && !strcmp(v->name, "12b"), err)) return -1;
    return ilm_gguf_writer_add_u32(w, "general.quantization_version", 2, err);
}

// ---- weights -----------------------------------------------------------------------------

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t next64(uint64_t *s) { return mix64(*s += 0x9e3779b97f4a7c15ull); }
static inline float unit(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); }  // [0, 1)

// Each row's stream depends only on (seed, tensor index, row).
static uint64_t row_seed(uint64_t seed, int tensor, int64_t row) {
    return mix64(seed ^ mix64(((uint64_t)(uint32_t)tensor << 40) ^ (uint64_t)row ^ 0x5851f42d4c957f2dull));
}

// Standard deviations of the integer codes below, to turn a weight std into a block scale.
#define Q4_CODE_STD 3.2f    // trunc((a - b) / 2), a, b uniform 0..15
#define Q8_CODE_STD 52.0f   // trunc((a + b) / 2), a, b uniform int8
#define F_CODE_STD 104.5f   // a + b, a, b uniform int8

static void gen_q4_0_row(uint64_t *s, float std, ilm_block_q4_0 *y, int nb) {
    for (int b = 0; b < nb; b++) {
        uint8_t code[32];
        for (int w = 0; w < 4; w++) {
            uint64_t r = next64(s);
            for (int j = 0; j < 8; j++, r >>= 8) code[w * 8 + j] = (uint8_t)(8 + ((int)(r & 15) - (int)((r >> 4) & 15)) / 2);
        }
        uint64_t r = next64(s);
        code[r & 31] = 0;  // the max-|x| element: value -8d
        float d = std / Q4_CODE_STD * (0.75f + 0.5f * unit(r));
        y[b].d = ilm_f32_to_f16((r >> 5) & 1 ? -d : d);
        for (int j = 0; j < 16; j++) y[b].qs[j] = (uint8_t)(code[j] | (code[j + 16] << 4));
    }
}

static void gen_q8_0_row(uint64_t *s, float std, ilm_block_q8_0 *y, int nb) {
    for (int b = 0; b < nb; b++) {
        for (int w = 0; w < 4; w++) {
            uint64_t r1 = next64(s), r2 = next64(s);
            for (int j = 0; j < 8; j++, r1 >>= 8, r2 >>= 8) {
                int q = ((int)(int8_t)(r1 & 0xff) + (int)(int8_t)(r2 & 0xff)) / 2;
                y[b].qs[w * 8 + j] = (int8_t)(q < -127 ? -127 : q);
            }
        }
        uint64_t r = next64(s);
        y[b].qs[r & 31] = (r >> 5) & 1 ? -127 : 127;  // the max-|x| element: d = amax / 127
        y[b].d = ilm_f32_to_f16(std / Q8_CODE_STD * (0.75f + 0.5f * unit(r)));
    }
}

static void gen_float_row(uint64_t *s, const tspec *t, int64_t row, float *x, int K) {
    switch (t->init) {
    case INIT_MATRIX:
        for (int k = 0; k < K; k += 8) {
            uint64_t r1 = next64(s), r2 = next64(s);
            for (int j = 0; j < 8 && k + j < K; j++, r1 >>= 8, r2 >>= 8)
                x[k + j] = t->a / F_CODE_STD * (float)((int)(int8_t)(r1 & 0xff) + (int)(int8_t)(r2 & 0xff));
        }
        break;
    case INIT_NORM:
        for (int k = 0; k < K; k++) x[k] = t->a + t->b * (2.0f * unit(next64(s)) - 1.0f);
        break;
    case INIT_ROPE_FREQS:  // docs/gemma4.md §2.6: 1 for the rotated pairs, 1e30 (identity) after
        for (int k = 0; k < K; k++) x[k] = k < ROPE_ROTATED ? 1.0f : 1e30f;
        break;
    default:
        break;
    }
    (void)row;
}

// One row of tensor `t` (index ti) in its file type; scratch holds K floats.
static void gen_row(const tspec *t, int ti, uint64_t seed, int64_t row, void *dst, float *scratch) {
    const int K = (int)t->ne[0];
    uint64_t s = row_seed(seed, ti, row);
    if (t->init == INIT_MATRIX && t->type == ILM_TYPE_Q4_0) gen_q4_0_row(&s, t->a, dst, K / ILM_QK);
    else if (t->init == INIT_MATRIX && t->type == ILM_TYPE_Q8_0) gen_q8_0_row(&s, t->a, dst, K / ILM_QK);
    else {
        gen_float_row(&s, t, row, scratch, K);
        ilm_quantize_row(t->type, scratch, dst, K);
    }
}

// Token -> centroid bucket of a random token ordering (§3.4: position / (V / centroid_count)).
static int gen_ordering(uint64_t seed, int ti, int V, int32_t **out, ilm_err *err) {
    int32_t *perm = malloc((size_t)V * sizeof *perm), *bucket = malloc((size_t)V * sizeof *bucket);
    if (!perm || !bucket) {
        free(perm);
        free(bucket);
        return ilm_fail(err, "out of memory");
    }
    uint64_t s = row_seed(seed, ti, 0);
    for (int i = 0; i < V; i++) perm[i] = i;
    for (int i = V - 1; i > 0; i--) {
        int j = (int)(next64(&s) % (uint64_t)(i + 1));
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int pos = 0; pos < V; pos++) bucket[perm[pos]] = pos / (V / N_CENTROIDS);
    free(perm);
    *out = bucket;
    return 0;
}

// ---- parallel chunks ---------------------------------------------------------------------

typedef struct {
    const tspec *t;
    int ti;
    uint64_t seed;
    int64_t row0, row1;
    size_t row_bytes;
    uint8_t *dst;
    float *scratch;
    int ith, nth;
} gen_job;

static void *gen_worker(void *arg) {
    gen_job *j = arg;
    int64_t n = j->row1 - j->row0;
    for (int64_t r = j->row0 + n * j->ith / j->nth; r < j->row0 + n * (j->ith + 1) / j->nth; r++)
        gen_row(j->t, j->ti, j->seed, r, j->dst + (size_t)(r - j->row0) * j->row_bytes, j->scratch);
    return NULL;
}

// One chunk of rows generated by nth threads in the background, so the caller can write the
// previous chunk meanwhile (generation and disk writes overlap: two buffers in flight).
typedef struct {
    gen_job jobs[64];
    pthread_t tids[64];
    bool started[64];
    int nth;
} gen_batch;

static void gen_start(gen_batch *g, const tspec *t, int ti, uint64_t seed, int64_t row0, int64_t row1, uint8_t *dst,
                      float *scratch, int K, int nth) {
    if (row1 - row0 < nth) nth = (int)(row1 - row0);
    if (nth < 1) nth = 1;
    g->nth = nth;
    for (int i = 0; i < nth; i++) {
        g->jobs[i] = (gen_job){t, ti, seed, row0, row1, ilm_row_bytes(t->type, K), dst, scratch + (size_t)i * K, i, nth};
        g->started[i] = pthread_create(&g->tids[i], NULL, gen_worker, &g->jobs[i]) == 0;
    }
}

static void gen_join(gen_batch *g) {
    for (int i = 0; i < g->nth; i++) {
        if (g->started[i]) pthread_join(g->tids[i], NULL);
        else gen_worker(&g->jobs[i]);  // a thread we could not start: do its rows here
    }
    g->nth = 0;
}

// ---- file --------------------------------------------------------------------------------

int ilm_synth_check_space(uint64_t need, uint64_t avail, const char *path, ilm_err *err) {
    // margin: 1 % + 64 MiB, so the file system is not left completely full
    uint64_t want = need + need / 100 + (64ull << 20);
    if (want > avail)
        return ilm_fail(err, "%s: not enough disk space: the file needs %.2f GiB, %.2f GiB free", path,
                        (double)need / (1 << 30), (double)avail / (1 << 30));
    return 0;
}

static int free_space(const char *path, uint64_t *avail, ilm_err *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    struct statvfs st;
    if (statvfs(dir, &st) != 0) return ilm_fail(err, "%s: cannot query free space of its directory", path);
    *avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    return 0;
}

static const variant *find_variant(const char *name) {
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++)
        if (!strcmp(VARIANTS[i].name, name)) return &VARIANTS[i];
    return NULL;
}

static const char *type_arg_name(int type) {
    switch (type) {
    case ILM_TYPE_Q4_0: return "q4_0";
    case ILM_TYPE_Q8_0: return "q8_0";
    case ILM_TYPE_F16: return "f16";
    case ILM_TYPE_BF16: return "bf16";
    default: return "?";
    }
}

// Validates the options and lists the tensors.
static int plan_file(const ilm_synth_opts *o, model_plan *p, tlist *l, ilm_err *err) {
    const variant *v = o->variant ? find_variant(o->variant) : NULL;
    if (!v) return ilm_fail(err, "synth: unknown variant '%s' (e2b, e4b, 12b, 26b-a4b, 31b)", o->variant ? o->variant : "");
    if (o->type != ILM_TYPE_Q4_0 && o->type != ILM_TYPE_Q8_0 && o->type != ILM_TYPE_F16 && o->type != ILM_TYPE_BF16)
        return ilm_fail(err, "synth: type must be q4_0, q8_0, f16 or bf16");
    int V = o->vocab > 0 ? o->vocab : REAL_VOCAB;
    if (V < VOCAB_MIN || V > REAL_VOCAB || V % N_CENTROIDS != 0)
        return ilm_fail(err, "synth: vocabulary size %d must be a multiple of %d in [%d, %d]", V, (int)N_CENTROIDS,
                        (int)VOCAB_MIN, (int)REAL_VOCAB);
    if (o->layers < 0 || o->layers > MAX_LAYERS) return ilm_fail(err, "synth: --layers %d out of range", o->layers);
    plan_model(p, v, o->drafter ? 0 : o->layers, V);
    *l = (tlist){.target = o->type};
    return o->drafter ? list_drafter(l, p, err) : list_target(l, p, err);
}

int ilm_synth_plan(const ilm_synth_opts *o, ilm_synth_tensor **tensors, int *n, ilm_err *err) {
    model_plan p;
    tlist l = {0};
    *tensors = NULL;
    *n = 0;
    if (plan_file(o, &p, &l, err)) {
        free(l.t);
        return -1;
    }
    ilm_synth_tensor *t = calloc((size_t)l.n + 1, sizeof *t);
    if (!t) {
        free(l.t);
        return ilm_fail(err, "out of memory");
    }
    for (int i = 0; i < l.n; i++) {
        memcpy(t[i].name, l.t[i].name, sizeof t[i].name);
        t[i].type = l.t[i].type;
        t[i].n_dims = l.t[i].n_dims;
        memcpy(t[i].ne, l.t[i].ne, sizeof t[i].ne);
    }
    free(l.t);
    *tensors = t;
    *n = l.n;
    return 0;
}

int ilm_synth_file(const ilm_synth_opts *o, uint64_t *bytes_out, ilm_err *err) {
    int nth = o->n_threads > 0 ? o->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    nth = nth < 1 ? 1 : nth > 64 ? 64 : nth;
    model_plan p;
    tlist l = {0};
    vocab vb = {0};
    ilm_gguf_writer *w = NULL;
    uint8_t *buf = NULL;
    float *scratch = NULL;
    int rc = -1;
    if (plan_file(o, &p, &l, err) || vocab_build(&vb, p.V, err)) goto done;
    const variant *v = p.v;
    const int V = p.V;

    uint64_t params = 0;
    int64_t max_K = 1;
    for (int i = 0; i < l.n; i++) {
        params += (uint64_t)(l.t[i].ne[0] * l.t[i].ne[1] * l.t[i].ne[2]);
        if (l.t[i].ne[0] > max_K) max_K = l.t[i].ne[0];
    }
    if (!(w = ilm_gguf_writer_new(err)) || write_metadata(w, &p, o, params, &vb, err)) goto done;
    for (int i = 0; i < l.n; i++)
        if (ilm_gguf_writer_add_tensor(w, l.t[i].name, l.t[i].type, l.t[i].n_dims, l.t[i].ne, err)) goto done;
    uint64_t size = ilm_gguf_writer_file_size(w);
    if (bytes_out) *bytes_out = size;
    if (o->dry_run) {
        printf("synth: %s%s %s: %d tensors, %.3f B parameters, %" PRIu64 " bytes (%.2f GiB)\n", v->name,
               o->drafter ? " drafter" : "", type_arg_name(o->type), l.n, (double)params / 1e9, size,
               (double)size / (1 << 30));
        rc = 0;
        goto done;
    }
    uint64_t avail = o->free_bytes;
    if (!avail && free_space(o->out, &avail, err)) goto done;
    if (ilm_synth_check_space(size, avail, o->out, err)) goto done;

    const size_t chunk_target = (size_t)16 << 20, buf_bytes = chunk_target + (size_t)max_K * 4;
    if (!(buf = ilm_malloc(2 * buf_bytes, err)) || !(scratch = ilm_malloc(2 * (size_t)nth * (size_t)max_K * 4, err)))
        goto done;
    if (ilm_gguf_writer_begin(w, o->out, err)) goto done;
    ilm_progress pr;
    ilm_progress_init(&pr, "synth", size, o->progress);
    // pipeline: chunk c is generated into buffer c % 2 while chunk c - 1 is written
    gen_batch *batch = calloc(2, sizeof *batch);  // one per buffer; threads point into them
    if (!batch) {
        ilm_fail(err, "out of memory");
        goto done;
    }
    struct { const tspec *t; size_t bytes; int slot; } pending = {NULL, 0, 0};
    int slot = 0, wrc = 0;
    for (int i = 0; i < l.n && !wrc; i++) {
        const tspec *t = &l.t[i];
        if (t->init == INIT_ORDERING) {  // small: made whole, after the pending chunk
            int32_t *ord = NULL;
            if (pending.t) {
                gen_join(&batch[pending.slot]);
                wrc = ilm_gguf_writer_data(w, buf + (size_t)pending.slot * buf_bytes, pending.bytes, err);
                pending.t = NULL;
            }
            if (!wrc) wrc = gen_ordering(o->seed, i, V, &ord, err);
            if (!wrc) wrc = ilm_gguf_writer_data(w, ord, (size_t)V * 4, err);
            free(ord);
            continue;
        }
        const int K = (int)t->ne[0];
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const size_t rb = ilm_row_bytes(t->type, K);
        int64_t chunk_rows = (int64_t)(chunk_target / rb);
        if (chunk_rows < 1) chunk_rows = 1;
        for (int64_t r = 0; r < rows && !wrc; r += chunk_rows) {
            int64_t r1 = r + chunk_rows < rows ? r + chunk_rows : rows;
            gen_start(&batch[slot], t, i, o->seed, r, r1, buf + (size_t)slot * buf_bytes,
                      scratch + (size_t)slot * (size_t)nth * (size_t)max_K, K, nth);
            if (pending.t) {
                gen_join(&batch[pending.slot]);
                wrc = ilm_gguf_writer_data(w, buf + (size_t)pending.slot * buf_bytes, pending.bytes, err);
                ilm_progress_add(&pr, pending.bytes, pending.t->name);
            }
            pending.t = t;
            pending.bytes = (size_t)(r1 - r) * rb;
            pending.slot = slot;
            slot ^= 1;
        }
    }
    if (pending.t) {
        gen_join(&batch[pending.slot]);
        if (!wrc) wrc = ilm_gguf_writer_data(w, buf + (size_t)pending.slot * buf_bytes, pending.bytes, err);
    }
    free(batch);
    if (wrc) goto done;
    if (ilm_gguf_writer_finish(w, err)) goto done;
    ilm_progress_done(&pr);
    rc = 0;
done:
    ilm_gguf_writer_free(w);  // removes the temp file unless finished
    vocab_free(&vb);
    free(l.t);
    free(buf);
    free(scratch);
    return rc;
}

// ---- command -----------------------------------------------------------------------------

static int usage_error(const char *what) {
    fprintf(stderr,
            "ironlm: error: synth: %s\n"
            "usage: ironlm synth --variant e2b|e4b|12b|26b-a4b|31b --type q4_0|q8_0|f16|bf16 -o FILE\n"
            "                    [--seed S] [--layers N] [--drafter] [-t N] [--vocab N] [--dry-run]\n",
            what);
    return 2;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int ilm_cmd_synth(int argc, char **argv) {
    ilm_synth_opts o = {.type = -1, .seed = 1, .progress = true};
    char msg[300];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        bool has_value = !strcmp(a, "--variant") || !strcmp(a, "--type") || !strcmp(a, "-o") ||
                         !strcmp(a, "--seed") || !strcmp(a, "--layers") || !strcmp(a, "-t") ||
                         !strcmp(a, "--threads") || !strcmp(a, "--vocab");
        if (has_value && i + 1 >= argc) {
            snprintf(msg, sizeof msg, "%s needs a value", a);
            return usage_error(msg);
        }
        if (!strcmp(a, "--variant")) {
            o.variant = argv[++i];
            if (!find_variant(o.variant)) {
                snprintf(msg, sizeof msg, "unknown variant '%s'", o.variant);
                return usage_error(msg);
            }
        } else if (!strcmp(a, "--type")) {
            const char *t = argv[++i];
            o.type = !strcmp(t, "q4_0") ? ILM_TYPE_Q4_0 : !strcmp(t, "q8_0") ? ILM_TYPE_Q8_0
                   : !strcmp(t, "f16")  ? ILM_TYPE_F16  : !strcmp(t, "bf16") ? ILM_TYPE_BF16 : -1;
            if (o.type < 0) return usage_error("--type must be q4_0, q8_0, f16 or bf16");
        } else if (!strcmp(a, "-o")) {
            o.out = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            char *end;
            o.seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) return usage_error("--seed needs an unsigned integer");
        } else if (!strcmp(a, "--layers")) {
            if (!parse_int(argv[++i], 1, MAX_LAYERS, &n)) return usage_error("--layers needs a count 1..64");
            o.layers = (int)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_int(argv[++i], 1, 1024, &n)) return usage_error("-t needs a thread count 1..1024");
            o.n_threads = (int)n;
        } else if (!strcmp(a, "--vocab")) {
            if (!parse_int(argv[++i], 1, REAL_VOCAB, &n)) return usage_error("--vocab needs a size up to 262144");
            o.vocab = (int)n;
        } else if (!strcmp(a, "--drafter")) {
            o.drafter = true;
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = true;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = false;
        } else {
            snprintf(msg, sizeof msg, "unknown argument %s", a);
            return usage_error(msg);
        }
    }
    if (!o.variant) return usage_error("--variant is required");
    if (o.type < 0) return usage_error("--type is required");
    if (!o.out && !o.dry_run) return usage_error("-o FILE is required");
    ilm_err err;
    uint64_t bytes = 0;
    double t0 = ilm_now();
    if (ilm_synth_file(&o, &bytes, &err)) {
        fprintf(stderr, "ironlm: error: %s\n", err.msg);
        return 1;
    }
    double dt = ilm_now() - t0;
    if (!o.dry_run)
        fprintf(stderr, "synth: wrote %s: %.2f GiB in %.1f s (%.0f MB/s)\n", o.out, (double)bytes / (1 << 30), dt,
                dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
    return 0;
}
