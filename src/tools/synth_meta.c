// synth_meta.c — the metadata of a synth file: a placeholder vocabulary with Gemma 4's
// special tokens at their real ids (docs/gemma4.md §1.5, §3.6), a short chat template, and
// the general / hyper-parameter keys of §3.2 (target) and §3.4 (drafter) in the converters'
// order.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/quantize.h"
#include "tools/synth_plan.h"

// ---- vocabulary (docs/gemma4.md §1.5, §3.6) ----------------------------------------------

enum { TOK_NORMAL = SYNTH_TOK_NORMAL, TOK_CONTROL = SYNTH_TOK_CONTROL, TOK_USER = SYNTH_TOK_USER, TOK_BYTE = SYNTH_TOK_BYTE };

void synth_vocab_free(synth_vocab *vb) {
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

enum { TOK_MAX_LEN = 24 };

int synth_vocab_build(synth_vocab *vb, int V, ilm_err *err) {
    memset(vb, 0, sizeof *vb);
    vb->text = calloc((size_t)V, sizeof *vb->text);
    vb->buf = malloc((size_t)V * TOK_MAX_LEN);
    vb->type = malloc((size_t)V * sizeof *vb->type);
    vb->score = malloc((size_t)V * sizeof *vb->score);
    if (!vb->text || !vb->buf || !vb->type || !vb->score) {
        synth_vocab_free(vb);
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
const char synth_chat_template[] =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}<|turn>{{ role }}\n{{ message['content'] | trim }}"
    "<turn|>\n{% endfor %}{% if add_generation_prompt %}<|turn>model\n{% endif %}";

static int write_tokenizer(ilm_gguf_writer *w, const synth_vocab *vb, int V, bool suppress, ilm_err *err) {
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
        ilm_gguf_writer_add_str(w, "tokenizer.chat_template", synth_chat_template, err) ||
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
static void describe(char *buf, size_t n, const synth_model *p, const ilm_synth_opts *o) {
    const synth_variant *v = p->v;
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

static int write_common_attn(ilm_gguf_writer *w, const char *arch, const synth_model *p, ilm_err *err) {
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
static int write_metadata(ilm_gguf_writer *w, const synth_model *p, const ilm_synth_opts *o, uint64_t params,
                          const synth_vocab *vb, ilm_err *err) {
    const synth_variant *v = p->v;
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

int ilm_synth_write_metadata(ilm_gguf_writer *w, const synth_model *p, const ilm_synth_opts *o, uint64_t params,
                             ilm_err *err) {
    synth_vocab vb;
    if (synth_vocab_build(&vb, p->V, err)) return -1;
    int rc = write_metadata(w, p, o, params, &vb, err);
    synth_vocab_free(&vb);
    return rc;
}
