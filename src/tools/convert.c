// convert.c — the converter's driver (tools/convert.h): config → plan → keys → tensors streamed
// row by row into the GGUF writer (a file through temp + rename, or a memfd).
#include "tools/convert.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/threadpool.h"
#include "simd/types.h"
#include "tools/convert_impl.h"
#include "tools/convert_tokenizer.h"
#include "tools/quantize.h"

void ilm_convert_opts_default(ilm_convert_opts *o) {
    memset(o, 0, sizeof *o);
    o->type = -1;
    o->drafter_layout = ILM_DRAFTER_ASSISTANT;
}

// --- general.name and general.size_label as the reference converter makes them -------------

// The checkpoint folder's own name (never the rest of its path), a "-hf" suffix dropped,
// '-' as spaces, lower-case words title-cased ("dense" -> "Dense", "gemma-4-e2b-it" ->
// "Gemma 4 E2B It"). NULL when nothing is left.
static char *model_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    size_t len = n - b;
    if (len >= 3 && (!strncmp(dir + n - 3, "-hf", 3) || !strncmp(dir + n - 3, "_hf", 3))) len -= 3;
    if (!len || (len == 1 && dir[b] == '.') || (len == 2 && !strncmp(dir + b, "..", 2))) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len; i++) s[i] = dir[b + i] == '-' ? ' ' : dir[b + i];
    s[len] = 0;
    for (char *w = s; *w;) {  // word by word
        while (*w == ' ') w++;
        char *e = w;
        bool lower = false, upper = false;
        while (*e && *e != ' ') {
            lower |= islower((unsigned char)*e) != 0;
            upper |= isupper((unsigned char)*e) != 0;
            e++;
        }
        bool version = (w[0] == 'v' && isdigit((unsigned char)w[1])) || isdigit((unsigned char)w[0]);
        if (lower && !upper && !version) {  // Python's str.title()
            bool prev_alpha = false;
            for (char *c = w; c < e; c++) {
                if (isalpha((unsigned char)*c)) {
                    *c = (char)(prev_alpha ? tolower((unsigned char)*c) : toupper((unsigned char)*c));
                    prev_alpha = true;
                } else {
                    prev_alpha = false;
                }
            }
        }
        w = e;
    }
    return s;
}

static void rounded(uint64_t n, char *buf, size_t cap) {
    double v;
    const char *suffix;
    if (n > 1000000000000ull) v = (double)n * 1e-12, suffix = "T";
    else if (n > 1000000000ull) v = (double)n * 1e-9, suffix = "B";
    else if (n > 1000000ull) v = (double)n * 1e-6, suffix = "M";
    else v = (double)n * 1e-3, suffix = "K";
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", nearbyint(v));
    const char *d = digits;
    while (*d == '0') d++;
    int fix = 2 - (int)strlen(d);
    snprintf(buf, cap, "%.*f%s", fix > 0 ? fix : 0, v, suffix);
}

// "1.0M", "275K"; MoE: "{experts}x{shared + one expert}".
static void size_label(const cv_tensor *t, size_t n, char *buf, size_t cap) {
    uint64_t total = 0, shared = 0, expert = 0, expert_sum = 0, n_exp = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].source_weight) continue;
        uint64_t size = 1;
        for (int d = 0; d < t[i].n_dims; d++) size *= (uint64_t)t[i].ne[d];
        if (strstr(t[i].name, "_exps.") && t[i].n_dims >= 3) {
            expert += size / (uint64_t)t[i].ne[2];
            expert_sum += (uint64_t)t[i].ne[2];
            n_exp++;
        } else {
            shared += size;
        }
        total += size;
    }
    if (n_exp) {
        char s[32];
        rounded(shared + expert, s, sizeof s);
        snprintf(buf, cap, "%llux%s", (unsigned long long)(expert_sum / n_exp), s);
    } else {
        rounded(total, buf, cap);
    }
}

// --- inputs and output -------------------------------------------------------------------

static bool same_inode(const struct stat *a, const char *path) {
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

// Refuses an existing non-regular OUT (the rename would replace a FIFO or device) and any
// OUT that is one of the checkpoint's files.
static int check_output(const char *out, const ilm_convert_opts *o, const ilm_st *st, ilm_err *err) {
    struct stat so;
    if (stat(out, &so) != 0) return 0;  // does not exist yet
    if (!S_ISREG(so.st_mode)) return ilm_fail(err, "%s: exists and is not a regular file; refusing to replace it", out);
    for (int i = 0; i < st->n_shards; i++)
        if (same_inode(&so, st->shards[i].path)) return ilm_fail(err, "%s: refusing to overwrite the input file", out);
    const char *files[] = {"config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                           "chat_template.jinja", "generation_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", o->hf_dir, files[i]) < sizeof p && same_inode(&so, p))
            return ilm_fail(err, "%s: refusing to overwrite the input file", out);
    }
    return 0;
}

// --- tensor data -------------------------------------------------------------------------

typedef struct {
    ilm_gguf_writer *w;
    const cv_config *c;
    const ilm_st *st;
    ilm_pool *pool;       // converts the rows of a chunk in parallel
    float *f;             // n_threads rows in f32
    uint8_t *chunk;       // CHUNK_BYTES (at least one output row)
    size_t chunk_cap;
    ilm_progress *pr;
    ilm_err *err;
} writer_ctx;

enum { CHUNK_BYTES = 8 << 20 };

static int put_rope_freqs(writer_ctx *x, const cv_tensor *t) {
    const int n = (int)t->ne[0], rot = (int)(x->c->partial_full * (float)x->c->hd_full / 2.0f);
    for (int i = 0; i < n; i++) x->f[i] = i < rot ? 1.0f : 1e30f;  // docs/gemma4.md §2.6
    return ilm_gguf_writer_data(x->w, x->f, (size_t)n * 4, x->err);
}

// HF token_ordering (position -> token) as token -> centroid index (docs/gemma4.md §3.4).
static int put_token_order(writer_ctx *x, const cv_tensor *t) {
    const int V = x->c->V, bucket = V / x->c->n_centroids;
    float *o = malloc(sizeof(float) * (size_t)V);
    if (!o) return ilm_fail(x->err, "out of memory");
    for (int i = 0; i < V; i++) o[i] = -1;
    for (int pos = 0; pos < V; pos++) {
        int64_t tok;
        if (t->src->dtype == ILM_ST_I64) memcpy(&tok, (const uint8_t *)t->src->data + 8 * (size_t)pos, 8);
        else {
            int32_t v;
            memcpy(&v, (const uint8_t *)t->src->data + 4 * (size_t)pos, 4);
            tok = v;
        }
        if (tok < 0 || tok >= V || o[tok] >= 0) {
            free(o);
            return ilm_fail(x->err, "tensor %s: not a permutation of the vocabulary (entry %d: %lld)", t->src->name, pos,
                            (long long)tok);
        }
        o[tok] = (float)(pos / bucket);
    }
    int rc = ilm_gguf_writer_data(x->w, o, sizeof(float) * (size_t)V, x->err);
    free(o);
    return rc;
}

// Rows [r0, r1) of a tensor converted into the chunk buffer, split over the pool's threads.
typedef struct {
    const cv_tensor *t;
    int src_type, K;      // src_type < 0: W4A16
    size_t in_rb, out_rb;
    int64_t r0, r1;
    uint8_t *out;
    float *f;
} rows_job;

static void convert_rows(void *ctx, int ith, int nth) {
    const rows_job *j = ctx;
    const int64_t n = j->r1 - j->r0;
    float *f = j->f + (size_t)ith * (size_t)j->K;
    for (int64_t r = j->r0 + n * ith / nth; r < j->r0 + n * (ith + 1) / nth; r++) {
        uint8_t *dst = j->out + (size_t)(r - j->r0) * j->out_rb;
        if (j->src_type >= 0) {
            ilm_row_to_f32(j->src_type, (const uint8_t *)j->t->src->data + (size_t)r * j->in_rb, f, j->K);
            ilm_quantize_row(j->t->type, f, dst, j->K);
        } else if (j->t->type == ILM_TYPE_Q4_0) {
            cv_w4a16_row_q4_0(j->t, r, dst);
        } else {
            cv_w4a16_row_f32(j->t, r, f);
            ilm_quantize_row(j->t->type, f, dst, j->K);
        }
    }
}

// Drops the mapping's pages of a tensor once written (they stay in the page cache), so the
// resident set stays about one tensor however large the checkpoint. Only file mappings of our
// own (MADV_DONTNEED would zero a caller's anonymous buffer).
static void release(const ilm_st *st, const ilm_st_tensor *s) {
    if (!s || !s->bytes || !st->shards[s->shard].owns_map) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)s->data, b = a + s->bytes;
    const uintptr_t a0 = (a + page - 1) / page * page, b0 = b / page * page;  // whole pages only
    if (b0 > a0) madvise((void *)a0, b0 - a0, MADV_DONTNEED);
}

// Asks the kernel to start reading a tensor's pages (asynchronous), so the reads of the next
// tensor overlap the conversion of this one instead of stalling each page fault on the disk.
static void prefetch(const ilm_st *st, const ilm_st_tensor *s) {
    if (!s || !s->bytes || !st->shards[s->shard].owns_map) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)s->data / page * page;
    madvise((void *)a, (uintptr_t)s->data + s->bytes - a, MADV_WILLNEED);
}

static int put_tensor_data(writer_ctx *x, const cv_tensor *t);

static int put_tensor(writer_ctx *x, const cv_tensor *t) {
    int rc = put_tensor_data(x, t);
    if (t->kind == CV_PLAIN || t->kind == CV_W4A16) {
        release(x->st, t->src);
        release(x->st, t->scale);
    }
    return rc;
}

static int put_tensor_data(writer_ctx *x, const cv_tensor *t) {
    if (t->kind == CV_ROPE_FREQS) return put_rope_freqs(x, t);
    if (t->kind == CV_TOKEN_ORDER) return put_token_order(x, t);
    const int K = t->n_dims ? (int)t->ne[0] : 1;
    int64_t rows = 1;
    for (int d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    rows_job j = {.t = t, .src_type = -1, .K = K, .out_rb = ilm_row_bytes(t->type, K), .out = x->chunk, .f = x->f};
    if (t->kind == CV_PLAIN) {
        const int st = t->src->dtype == ILM_ST_F16 ? ILM_TYPE_F16 : t->src->dtype == ILM_ST_BF16 ? ILM_TYPE_BF16 : ILM_TYPE_F32;
        if (st == t->type) {
            if (ilm_gguf_writer_data(x->w, t->src->data, t->src->bytes, x->err)) return -1;
            ilm_progress_add(x->pr, t->src->bytes, t->name);
            return 0;
        }
        j.src_type = st;
        j.in_rb = ilm_row_bytes(st, K);
    } else {
        j.in_rb = (size_t)K / 2;  // W4A16: progress in packed bytes
    }
    int64_t per_chunk = (int64_t)(x->chunk_cap / j.out_rb);
    if (per_chunk < 1) per_chunk = 1;
    for (int64_t r = 0; r < rows; r += per_chunk) {
        j.r0 = r;
        j.r1 = r + per_chunk < rows ? r + per_chunk : rows;
        if (j.r1 - j.r0 < 2 * ilm_pool_size(x->pool)) convert_rows(&j, 0, 1);  // not worth waking the pool
        else ilm_pool_run(x->pool, convert_rows, &j);
        if (ilm_gguf_writer_data(x->w, x->chunk, (size_t)(j.r1 - j.r0) * j.out_rb, x->err)) return -1;
        ilm_progress_add(x->pr, (uint64_t)(j.r1 - j.r0) * j.in_rb, t->name);
    }
    return 0;
}

// --- the conversion ----------------------------------------------------------------------

// The file's general.file_type: --type, Q4_0 for W4A16, else the embedding's precision.
static int file_type(const ilm_convert_opts *o, const cv_config *c, const cv_tensor *t, size_t n) {
    if (o->type >= 0) return ilm_ftype_of(o->type);
    if (c->w4a16) return ilm_ftype_of(ILM_TYPE_Q4_0);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, "token_embd.weight")) return ilm_ftype_of(t[i].type);
    return 0;
}

static int convert(const ilm_convert_opts *o, const char *out, int fd, ilm_err *err) {
    if (o->type >= 0 && ilm_ftype_of(o->type) < 0)
        return ilm_fail(err, "convert: type %s is not supported (f32, f16, bf16, q8_0, q4_0)", ilm_ggml_type_name(o->type));
    if (o->drafter_layout != ILM_DRAFTER_ASSISTANT && o->drafter_layout != ILM_DRAFTER_MTP)
        return ilm_fail(err, "convert: unknown drafter layout %d", o->drafter_layout);
    struct stat sd;
    if (stat(o->hf_dir, &sd) != 0 || !S_ISDIR(sd.st_mode)) return ilm_fail(err, "%s: not a checkpoint directory", o->hf_dir);
    cv_config *c = malloc(sizeof *c);
    if (!c) return ilm_fail(err, "out of memory");
    int rc = -1;
    ilm_st *st = NULL;
    cv_tensor *t = NULL;
    size_t n = 0;
    ilm_gguf_writer *w = NULL;
    char *name = NULL;
    writer_ctx x = {.c = c, .err = err};
    if (cv_read_config(o->hf_dir, c, err) || ilm_st_open_dir(&st, o->hf_dir, err)) goto done;
    if (out && check_output(out, o, st, err)) goto done;
    if (cv_plan(st, c, o, &t, &n, err)) goto done;

    char label[48];
    size_label(t, n, label, sizeof label);
    bool centroids = false;
    for (size_t i = 0; i < n; i++) centroids |= t[i].kind == CV_TOKEN_ORDER;
    if (c->kind == CV_TARGET) name = model_name(o->hf_dir);
    cv_meta m = {.name = name, .size_label = label, .ftype = file_type(o, c, t, n), .layout = o->drafter_layout,
                 .centroids = centroids};
    if (!(w = ilm_gguf_writer_new(err)) || cv_write_keys(w, c, &m, err)) goto done;
    if (ilm_convert_tokenizer(w, o->hf_dir, err)) goto done;
    if (ilm_gguf_writer_add_u32(w, "general.quantization_version", 2, err)) goto done;

    int64_t max_K = 1;
    uint64_t work = 0;
    for (size_t i = 0; i < n; i++) {
        if (ilm_gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne, err)) goto done;
        if (t[i].ne[0] > max_K) max_K = t[i].ne[0];
        if (t[i].src && t[i].kind == CV_PLAIN) work += t[i].src->bytes;
        else if (t[i].src) work += t[i].src->bytes;
    }
    if (max_K < c->V) max_K = c->V;  // the rope/ordering scratch
    ilm_pool_opts po = {.n_threads = o->n_threads, .numa = ILM_NUMA_OFF, .pin = 0};
    if (ilm_pool_create(&x.pool, &po, err)) goto done;
    x.chunk_cap = (size_t)max_K * 4 > CHUNK_BYTES ? (size_t)max_K * 4 : CHUNK_BYTES;
    if (!(x.f = ilm_malloc((size_t)ilm_pool_size(x.pool) * (size_t)max_K * 4, err)) ||
        !(x.chunk = ilm_malloc(x.chunk_cap, err)))
        goto done;
    if (out ? ilm_gguf_writer_begin(w, out, err) : ilm_gguf_writer_begin_fd(w, fd, "(memfd)", err)) goto done;
    ilm_progress pr;
    ilm_progress_init(&pr, "convert", work, o->progress);
    x.w = w;
    x.st = st;
    x.pr = &pr;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i ? i + 1 : 0; k <= i + 1 && k < n; k++) {
            prefetch(st, t[k].src);
            prefetch(st, t[k].scale);
        }
        if (put_tensor(&x, &t[i])) goto done;
    }
    if (ilm_gguf_writer_finish(w, err)) goto done;
    ilm_progress_done(&pr);
    rc = 0;
done:
    ilm_gguf_writer_free(w);  // removes the temp file unless finished
    free(x.f);
    free(x.chunk);
    if (x.pool) ilm_pool_destroy(x.pool);
    free(name);
    free(t);
    ilm_st_close(st);
    free(c);
    return rc;
}

int ilm_convert(const ilm_convert_opts *o, ilm_err *err) {
    if (!o->out) return ilm_fail(err, "convert: no output path");
    return convert(o, o->out, -1, err);
}

int ilm_convert_to_fd(const ilm_convert_opts *o, ilm_err *err) {
    int fd = memfd_create("ironlm-convert", MFD_CLOEXEC);
    if (fd < 0) return ilm_fail(err, "memfd_create failed");
    if (convert(o, NULL, fd, err)) {
        close(fd);
        return -1;
    }
    return fd;
}

int ilm_convert_resolve_model(const char *path, char *buf, size_t cap, int *fd, bool *w4a16, ilm_err *err) {
    struct stat s;
    *fd = -1;
    if (w4a16) *w4a16 = false;
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode)) {
        char cfg[4096];
        snprintf(cfg, sizeof cfg, "%s/config.json", path);
        if (access(cfg, F_OK) != 0)
            return ilm_fail(err, "%s: not a regular file (a directory) and not a Hugging Face checkpoint (no config.json)",
                            path);
        ilm_convert_opts o;
        ilm_convert_opts_default(&o);
        o.hf_dir = path;
        if ((*fd = ilm_convert_to_fd(&o, err)) < 0) return -1;
        snprintf(buf, cap, "/proc/self/fd/%d", *fd);
        cv_config c;
        if (w4a16 && cv_read_config(path, &c, err) == 0) *w4a16 = c.w4a16;
        return 0;
    }
    if ((size_t)snprintf(buf, cap, "%s", path) >= cap) return ilm_fail(err, "%s: path too long", path);
    return 0;
}

void ilm_convert_pick_act(ilm_engine_opts *o, bool w4a16) {
    if (w4a16 && !o->act_given) o->act = ILM_ACTS_BF16;
}
