// synth_hf.c — a synth model as a Hugging Face checkpoint directory (`ironlm synth --hf DIR`),
// the input `ironlm convert` reads, for conversion benchmarks without downloads.
//
// The tensors are synth_plan.c's, renamed by the converter's own table in reverse
// (ilm_convert_hf_name) and shaped outermost first; rope_freqs.weight is left out (the converter
// generates it). Every tensor is in the chosen dtype (bf16, f16, f32); with --w4a16 the
// attention and MLP projections become compressed-tensors pack-quantized triples (weight_packed
// I32, weight_scale BF16 per 32-group, weight_shape I64), the rest stays in the dtype. The
// weights are streamed by synth_stream (synth_write.c), tensor after tensor, into the shard
// each belongs to (shards split the bytes about evenly, model-0000i-of-0000n.safetensors).
// tokenizer.json is synth_meta.c's vocabulary as a BPE model with byte fallback, its special
// tokens listed in added_tokens and in tokenizer_config.json, which carries the chat template.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "format/json.h"
#include "tools/convert.h"
#include "tools/synth_plan.h"

// ---- the checkpoint's tensors ---------------------------------------------------------------

// The linear layers a compressed-tensors W4A16 recipe quantizes: attention and MLP projections.
static bool quantized_linear(const char *hf, const synth_tspec *t) {
    size_t n = strlen(hf);
    return t->n_dims == 2 && t->ne[0] % 32 == 0 && strstr(hf, ".layers.") && !strstr(hf, ".router.") && n > 12 &&
           !strcmp(hf + n - 12, "_proj.weight");
}

static int hf_tensors(const synth_tlist *g, const ilm_synth_opts *o, synth_tlist *h, ilm_err *err) {
    for (int i = 0; i < g->n; i++) {
        synth_tspec t = g->t[i];
        if (t.init == INIT_ROPE_FREQS) continue;
        char hf[sizeof t.name];
        if (ilm_convert_hf_name(t.name, hf, sizeof hf)) return ilm_fail(err, "synth: %s has no checkpoint name", t.name);
        t.type = o->type;
        if (!o->w4a16 || !quantized_linear(hf, &t)) {
            snprintf(t.name, sizeof t.name, "%s", hf);
            if (synth_tlist_push(h, &t, err)) return -1;
            continue;
        }
        const int64_t K = t.ne[0], N = t.ne[1];
        hf[strlen(hf) - strlen("weight")] = 0;  // "....q_proj."
        synth_tspec p = t, s = t, sh = t;
        if (strlen(hf) > 80)  // the %.80s below (and sizeof p.name) hold it
            return ilm_fail(err, "synth: checkpoint name %sweight_packed is too long", hf);
        snprintf(p.name, sizeof p.name, "%.80sweight_packed", hf);
        p.type = ILM_TYPE_I32;
        p.init = INIT_PACKED;
        p.ne[0] = K / 8;
        snprintf(s.name, sizeof s.name, "%.80sweight_scale", hf);
        s.type = ILM_TYPE_BF16;
        s.init = INIT_SCALE;
        s.ne[0] = K / 32;
        snprintf(sh.name, sizeof sh.name, "%.80sweight_shape", hf);
        sh.init = INIT_SHAPE;
        sh.n_dims = 1;
        sh.ne[0] = 2;
        sh.ne[1] = 1;
        sh.val[0] = N;
        sh.val[1] = K;
        if (synth_tlist_push(h, &p, err) || synth_tlist_push(h, &s, err) || synth_tlist_push(h, &sh, err)) return -1;
    }
    return 0;
}

static uint64_t tensor_bytes(const synth_tspec *t) {
    if (t->init == INIT_SHAPE) return sizeof t->val;
    return (uint64_t)ilm_row_bytes(t->type, (int)t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

static const char *dtype_name(const synth_tspec *t) {
    if (t->init == INIT_SHAPE) return "I64";
    switch (t->type) {
    case ILM_TYPE_BF16: return "BF16";
    case ILM_TYPE_F16: return "F16";
    case ILM_TYPE_I32: return "I32";
    default: return "F32";
    }
}

// ---- files ----------------------------------------------------------------------------------

typedef struct {
    const char *dir;
    char **made;          // files written so far (removed on failure)
    int n_made;
    uint64_t bytes;       // their total size
    ilm_err *err;
} out_dir;

static char *path_in(out_dir *d, const char *name) {
    size_t n = strlen(d->dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) ilm_fail(d->err, "out of memory");
    else snprintf(p, n, "%s/%s", d->dir, name);
    return p;
}

static int write_all(int fd, const void *data, size_t n, const char *path, ilm_err *err) {
    const uint8_t *p = data;
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return ilm_fail(err, "%s: write failed (%s)", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

// Creates DIR/name (replacing it); the descriptor, or -1 with the error set.
static int create(out_dir *d, const char *name) {
    char **m = realloc(d->made, (size_t)(d->n_made + 1) * sizeof *m);
    if (!m) return ilm_fail(d->err, "out of memory");
    d->made = m;
    char *p = path_in(d, name);
    if (!p) return -1;
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ilm_fail(d->err, "%s: cannot create (%s)", p, strerror(errno));
        free(p);
        return -1;
    }
    d->made[d->n_made++] = p;
    return fd;
}

static int finish(out_dir *d, int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0) d->bytes += (uint64_t)st.st_size;
    if (close(fd) != 0) return ilm_fail(d->err, "%s: write failed (%s)", d->made[d->n_made - 1], strerror(errno));
    return 0;
}

static int write_text(out_dir *d, const char *name, const ilm_buf *b) {
    if (b->oom) return ilm_fail(d->err, "out of memory");
    int fd = create(d, name);
    if (fd < 0) return -1;
    if (write_all(fd, b->p, b->len, d->made[d->n_made - 1], d->err)) {
        close(fd);
        return -1;
    }
    return finish(d, fd);
}

// ---- safetensors shards ---------------------------------------------------------------------

typedef struct {
    out_dir *d;
    const synth_tlist *h;
    const int *shard_of;
    int n_shards, cur, fd;
} shard_sink;

static void shard_name(char *buf, size_t cap, int s, int n) {
    if (n == 1) snprintf(buf, cap, "model.safetensors");
    else snprintf(buf, cap, "model-%05d-of-%05d.safetensors", s + 1, n);
}

// u64 header length, the JSON header (padded with spaces to 8 bytes), as the reference writer.
static int open_shard(shard_sink *x, int s) {
    ilm_buf b = {0};
    uint64_t off = 0;
    ilm_buf_puts(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < x->h->n; i++) {
        if (x->shard_of[i] != s) continue;
        const synth_tspec *t = &x->h->t[i];
        uint64_t n = tensor_bytes(t);
        ilm_buf_printf(&b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, dtype_name(t));
        for (int dd = t->n_dims - 1; dd >= 0; dd--) ilm_buf_printf(&b, "%" PRId64 "%s", t->ne[dd], dd ? "," : "");
        ilm_buf_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + n);
        off += n;
    }
    ilm_buf_putc(&b, '}');
    while (b.len % 8) ilm_buf_putc(&b, ' ');
    char name[64];
    shard_name(name, sizeof name, s, x->n_shards);
    int rc = -1;
    if (b.oom) {
        ilm_fail(x->d->err, "out of memory");
        goto done;
    }
    if ((x->fd = create(x->d, name)) < 0) goto done;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    rc = write_all(x->fd, len, 8, name, x->d->err) || write_all(x->fd, b.p, b.len, name, x->d->err) ? -1 : 0;
done:
    ilm_buf_free(&b);
    x->cur = s;
    return rc;
}

static int shard_put(void *ctx, int ti, const void *data, size_t bytes, ilm_err *err) {
    shard_sink *x = ctx;
    if (x->shard_of[ti] != x->cur) {
        if (x->fd >= 0) {
            int fd = x->fd;
            x->fd = -1;
            if (finish(x->d, fd)) return -1;
        }
        if (open_shard(x, x->shard_of[ti])) return -1;
    }
    return write_all(x->fd, data, bytes, x->d->made[x->d->n_made - 1], err);
}

// Tensor → shard: consecutive runs of about total / n bytes, no shard empty. Returns the count.
static int assign_shards(const synth_tlist *h, int want, int *shard_of) {
    uint64_t total = 0, cum = 0;
    for (int i = 0; i < h->n; i++) total += tensor_bytes(&h->t[i]);
    if (want < 1) want = 1;
    int n = 0, last = -1;
    for (int i = 0; i < h->n; i++) {
        int s = total ? (int)((double)cum / (double)total * want) : 0;
        if (s != last) n++, last = s;
        shard_of[i] = n - 1;
        cum += tensor_bytes(&h->t[i]);
    }
    return n;
}

static void put_index(ilm_buf *b, const synth_tlist *h, const int *shard_of, int n) {
    uint64_t total = 0;
    for (int i = 0; i < h->n; i++) total += tensor_bytes(&h->t[i]);
    ilm_buf_printf(b, "{\n  \"metadata\": {\"total_size\": %" PRIu64 "},\n  \"weight_map\": {", total);
    for (int i = 0; i < h->n; i++) {
        char name[64];
        shard_name(name, sizeof name, shard_of[i], n);
        ilm_buf_printf(b, "%s\n    \"%s\": \"%s\"", i ? "," : "", h->t[i].name, name);
    }
    ilm_buf_puts(b, "\n  }\n}\n");
}

// ---- config.json ----------------------------------------------------------------------------

static void put_config(ilm_buf *b, const synth_model *p, const ilm_synth_opts *o) {
    const synth_variant *v = p->v;
    const char *dtype = o->type == ILM_TYPE_F32 ? "float32" : o->type == ILM_TYPE_F16 ? "float16" : "bfloat16";
    ilm_buf_puts(b, "{\n  \"architectures\": [\"Gemma4ForConditionalGeneration\"],\n  \"model_type\": \"gemma4\",\n"
                    "  \"text_config\": {\n    \"model_type\": \"gemma4_text\",\n");
    ilm_buf_printf(b,
                   "    \"vocab_size\": %d,\n    \"hidden_size\": %d,\n    \"intermediate_size\": %d,\n"
                   "    \"num_hidden_layers\": %d,\n    \"num_attention_heads\": %d,\n    \"num_key_value_heads\": %d,\n"
                   "    \"num_global_key_value_heads\": %d,\n    \"head_dim\": %d,\n    \"global_head_dim\": %d,\n"
                   "    \"hidden_activation\": \"gelu_pytorch_tanh\",\n    \"max_position_embeddings\": %d,\n"
                   "    \"rms_norm_eps\": 1e-06,\n    \"pad_token_id\": 0,\n    \"eos_token_id\": 1,\n    \"bos_token_id\": 2,\n"
                   "    \"tie_word_embeddings\": true,\n",
                   p->V, v->H, v->F, p->L, v->nh, v->nkv_s, v->nkv_f, (int)HD_SWA, (int)HD_FULL, v->ctx);
    ilm_buf_printf(b,
                   "    \"rope_parameters\": {\n      \"full_attention\": {\"rope_type\": \"proportional\", "
                   "\"partial_rotary_factor\": %g, \"rope_theta\": 1000000.0},\n"
                   "      \"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}\n    },\n",
                   2.0 * ROPE_ROTATED / HD_FULL);
    ilm_buf_printf(b, "    \"sliding_window\": %d,\n    \"layer_types\": [", v->window);
    for (int i = 0; i < p->L; i++)
        ilm_buf_printf(b, "%s\"%s\"", i ? ", " : "", p->sliding[i] ? "sliding_attention" : "full_attention");
    ilm_buf_printf(b,
                   "],\n    \"final_logit_softcapping\": 30.0,\n    \"vocab_size_per_layer_input\": %d,\n"
                   "    \"hidden_size_per_layer_input\": %d,\n    \"attention_k_eq_v\": %s,\n"
                   "    \"num_kv_shared_layers\": %d,\n    \"use_double_wide_mlp\": %s,\n    \"enable_moe_block\": %s,\n",
                   p->V, v->ple, v->k_eq_v ? "true" : "false", p->n_shared, v->wide_shared ? "true" : "false",
                   v->n_expert ? "true" : "false");
    if (v->n_expert)
        ilm_buf_printf(b, "    \"num_experts\": %d,\n    \"top_k_experts\": %d,\n    \"moe_intermediate_size\": %d\n",
                       v->n_expert, v->n_expert_used, v->F_expert);
    else
        ilm_buf_puts(b, "    \"num_experts\": null,\n    \"top_k_experts\": null,\n    \"moe_intermediate_size\": null\n");
    ilm_buf_printf(b, "  },\n  \"torch_dtype\": \"%s\",\n  \"tie_word_embeddings\": true", dtype);
    if (o->w4a16)
        ilm_buf_puts(b, ",\n  \"quantization_config\": {\n    \"quant_method\": \"compressed-tensors\",\n"
                        "    \"format\": \"pack-quantized\",\n    \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], "
                        "\"input_activations\": null, \"output_activations\": null, \"weights\": {\"num_bits\": 4, "
                        "\"type\": \"int\", \"symmetric\": true, \"strategy\": \"group\", \"group_size\": 32, "
                        "\"dynamic\": false}}},\n    \"ignore\": [\"lm_head\"]\n  }");
    ilm_buf_puts(b, "\n}\n");
}

// ---- tokenizer.json, tokenizer_config.json ----------------------------------------------------

static void put_str(ilm_buf *b, const char *s) { ilm_json_buf_str(b, s, strlen(s)); }

static void put_tokenizer(ilm_buf *b, const synth_vocab *vb, int V) {
    ilm_buf_puts(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    bool first = true;
    for (int i = 0; i < V; i++) {
        if (vb->type[i] != SYNTH_TOK_CONTROL && vb->type[i] != SYNTH_TOK_USER) continue;
        ilm_buf_printf(b, "%s\n    {\"id\": %d, \"content\": ", first ? "" : ",", i);
        put_str(b, vb->text[i]);
        ilm_buf_printf(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                          "\"special\": %s}", vb->type[i] == SYNTH_TOK_CONTROL ? "true" : "false");
        first = false;
    }
    ilm_buf_puts(b, "\n  ],\n"
                    "  \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"},\n"
                    "  \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[^\\\\n]+|[\\\\n]+\"}, "
                    "\"behavior\": \"Isolated\", \"invert\": false},\n"
                    "  \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", "
                    "\"type_id\": 0}}], \"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": "
                    "{\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {}},\n"
                    "  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": "
                    "{\"String\": \"\xe2\x96\x81\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]},\n"
                    "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", "
                    "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": true, "
                    "\"byte_fallback\": true, \"ignore_merges\": false,\n    \"vocab\": {");
    for (int i = 0; i < V; i++) {
        ilm_buf_puts(b, i ? ",\n      " : "\n      ");
        put_str(b, vb->text[i]);
        ilm_buf_printf(b, ": %d", i);
    }
    ilm_buf_puts(b, "\n    },\n    \"merges\": [");
    for (int m = 0; m < vb->n_merges; m++) {
        ilm_buf_puts(b, m ? ", " : "");
        put_str(b, vb->merges[m]);
    }
    ilm_buf_puts(b, "]\n  }\n}\n");
}

static void put_tokenizer_config(ilm_buf *b, const synth_vocab *vb, int V) {
    ilm_buf_puts(b, "{\n  \"backend\": \"tokenizers\",\n  \"bos_token\": \"<bos>\",\n  \"eos_token\": \"<eos>\",\n"
                    "  \"unk_token\": \"<unk>\",\n  \"pad_token\": \"<pad>\",\n  \"mask_token\": \"<mask>\",\n"
                    "  \"extra_special_tokens\": [");
    bool first = true;
    for (int i = 5; i < V; i++)  // 0..4: the named ones above
        if (vb->type[i] == SYNTH_TOK_CONTROL) {
            ilm_buf_puts(b, first ? "" : ", ");
            put_str(b, vb->text[i]);
            first = false;
        }
    ilm_buf_puts(b, "],\n  \"tokenizer_class\": \"TokenizersBackend\",\n  \"chat_template\": ");
    put_str(b, synth_chat_template);
    ilm_buf_puts(b, "\n}\n");
}

// ---- the checkpoint -------------------------------------------------------------------------

int ilm_synth_hf(const ilm_synth_opts *o, uint64_t *bytes_out, ilm_err *err) {
    if (o->drafter) return ilm_fail(err, "synth: --hf writes target models only (no --drafter)");
    if (o->type != ILM_TYPE_BF16 && o->type != ILM_TYPE_F16 && o->type != ILM_TYPE_F32)
        return ilm_fail(err, "synth: --hf needs --type bf16, f16 or f32");
    ilm_synth_opts po = *o;
    po.type = ILM_TYPE_BF16;  // the plan's type rule does not matter: every tensor gets o->type
    synth_model p;
    synth_tlist g = {0}, h = {0};
    int *shard_of = NULL, rc = -1;
    synth_vocab vb = {0};
    ilm_buf b = {0};
    out_dir d = {.dir = o->hf_dir, .err = err};
    shard_sink x = {.fd = -1, .cur = -1};
    if (ilm_synth_plan_file(&po, &p, &g, err) || hf_tensors(&g, o, &h, err)) goto done;
    if (!(shard_of = malloc((size_t)h.n * sizeof *shard_of))) {
        ilm_fail(err, "out of memory");
        goto done;
    }
    const int n_shards = assign_shards(&h, o->shards, shard_of);
    uint64_t size = 0, params = 0;
    for (int i = 0; i < h.n; i++) {
        size += tensor_bytes(&h.t[i]);
        params += (uint64_t)(h.t[i].ne[0] * h.t[i].ne[1] * h.t[i].ne[2]) * (h.t[i].init == INIT_PACKED ? 8 : 1);
    }
    if (o->dry_run) {
        printf("synth: %s HF checkpoint%s: %d tensors in %d file(s), %.3f B parameters, %" PRIu64 " bytes (%.2f GiB)\n",
               p.v->name, o->w4a16 ? " (W4A16)" : "", h.n, n_shards, (double)params / 1e9, size, (double)size / (1 << 30));
        if (bytes_out) *bytes_out = size;
        rc = 0;
        goto done;
    }
    if (mkdir(o->hf_dir, 0777) != 0 && errno != EEXIST) {
        ilm_fail(err, "%s: cannot create the directory (%s)", o->hf_dir, strerror(errno));
        goto done;
    }
    uint64_t avail = o->free_bytes;
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/model.safetensors", o->hf_dir);
    if (!avail && synth_dir_space(probe, &avail, err)) goto done;
    if (ilm_synth_check_space(size, avail, o->hf_dir, err)) goto done;

    ilm_progress pr;
    ilm_progress_init(&pr, "synth", size, o->progress);
    x = (shard_sink){&d, &h, shard_of, n_shards, -1, -1};
    if (synth_stream(&h, o->seed, synth_threads(o), p.V, shard_put, &x, &pr, err)) goto done;
    int fd = x.fd;
    x.fd = -1;
    if (finish(&d, fd)) goto done;
    ilm_progress_done(&pr);
    if (n_shards > 1) {
        put_index(&b, &h, shard_of, n_shards);
        if (write_text(&d, "model.safetensors.index.json", &b)) goto done;
    }
    ilm_buf_reset(&b);
    put_config(&b, &p, o);
    if (write_text(&d, "config.json", &b) || synth_vocab_build(&vb, p.V, err)) goto done;
    ilm_buf_reset(&b);
    put_tokenizer(&b, &vb, p.V);
    if (write_text(&d, "tokenizer.json", &b)) goto done;
    ilm_buf_reset(&b);
    put_tokenizer_config(&b, &vb, p.V);
    if (write_text(&d, "tokenizer_config.json", &b)) goto done;
    if (bytes_out) *bytes_out = d.bytes;
    rc = 0;
done:
    if (x.fd >= 0) close(x.fd);
    for (int i = 0; i < d.n_made; i++) {
        if (rc) unlink(d.made[i]);
        free(d.made[i]);
    }
    free(d.made);
    ilm_buf_free(&b);
    synth_vocab_free(&vb);
    free(shard_of);
    free(g.t);
    free(h.t);
    return rc;
}
